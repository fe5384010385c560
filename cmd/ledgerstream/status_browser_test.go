package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns the headless browser to drive: $LEDGERSTREAM_CHROMIUM, else Debian's
// chromium (or chromium-browser, google-chrome) on PATH; "" when there is none.
func findChromium() string {
	if p := os.Getenv("LEDGERSTREAM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless Chromium with a fresh profile and a phone-sized window. The
// flags keep it off the network (this machine's closed network refuses its background
// connections) and let it run as root.
func newBrowser(t *testing.T, chrome string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(412, 915),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chrome, err)
	}
	return ctx
}

// screenshotOnFailure saves the page as a PNG when the test fails and logs where.
func screenshotOnFailure(t *testing.T, ctx context.Context) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		dir := cmpOr(os.Getenv("LEDGERSTREAM_TEST_ARTIFACTS"), os.TempDir())
		path := filepath.Join(dir, fmt.Sprintf("ledgerstream-status-%s.png", time.Now().UTC().Format("20060102T150405")))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the page when the test failed: %s", path)
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// scrapeLag sums ledgerstream_lag over the partitions of one /metrics scrape (false while
// no lag is known).
func scrapeLag(t *testing.T, base string) (int64, bool) {
	t.Helper()
	var lag int64
	known := false
	for k, v := range scrapeMetrics(t, base) {
		if strings.HasPrefix(k, "ledgerstream_lag{") {
			lag += int64(v)
			known = true
		}
	}
	return lag, known
}

// pageState is what the test reads off the page in the browser.
type pageState struct {
	Lag       string `json:"lag"`
	Committed []string
	Owners    int  `json:"owners"`
	Bars      int  `json:"bars"`
	JS        bool `json:"js"`
	Marker    bool `json:"marker"`
}

const readPage = `(() => {
  const lag = document.getElementById("total-lag");
  return {
    lag: lag ? lag.dataset.value : "",
    Committed: [...document.querySelectorAll("#partitions td.committed")].map(td => td.textContent),
    owners: [...document.querySelectorAll("#partitions b")].length,
    bars: document.querySelectorAll("#chart-rows svg rect").length,
    js: document.documentElement.classList.contains("js"),
    marker: window.__loadedOnce === true,
  };
})()`

// TestStatusPageInBrowser drives headless Chromium against a live `run`: the page, loaded
// once while the backlog is being committed, must refresh by itself until it shows a
// non-zero lag equal to /metrics' at that moment, then the whole topic committed with lag 0
// and a chart of the commits. A failure saves a screenshot.
func TestStatusPageInBrowser(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		t.Skip("no Chromium found (Debian: apt-get install chromium, or set LEDGERSTREAM_CHROMIUM); the status page's browser test skips")
	}
	t.Parallel()
	const n = 3000
	began := time.Now()
	// The browser first: its start is slow on a loaded machine, and the backlog must still
	// be draining when the page opens.
	ctx := newBrowser(t, chrome)
	screenshotOnFailure(t, ctx)
	t.Logf("%s: %s started", time.Since(began).Round(time.Millisecond), chrome)
	st := newStack(t, startBroker(t, 3))
	st.run(t, "produce", "--count", fmt.Sprint(n), "--seed", "5")
	// Small batches every second: the lag falls by steps for some 30 seconds.
	run := st.start(t, "run", "--trigger", "1s", "--max-offsets-per-trigger", "100", "--metrics-listen", "127.0.0.1:0", "--worker-id", "browser-test")
	line := run.waitForLine(&run.stderr, "status page", time.Minute)
	m := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if m == "" {
		t.Fatalf("no address in %q", line)
	}
	base := m
	t.Logf("%s: worker serving its status page at %s/", time.Since(began).Round(time.Millisecond), base)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("partitions")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__loadedOnce = true`)(ctx, t)
			return err
		})); err != nil {
		t.Fatalf("load %s/: %v", base, err)
	}
	t.Logf("%s: page loaded", time.Since(began).Round(time.Millisecond))

	var ps pageState
	read := func() {
		t.Helper()
		var err error
		if ps, err = chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage)); err != nil {
			t.Fatalf("read the page: %v", err)
		}
		if !ps.Marker {
			t.Fatalf("the page was reloaded: the script should refresh it in place")
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	matchedMoving := false
	for {
		read()
		metricsLag, known := scrapeLag(t, base)
		pageLag := ps.Lag
		if known && pageLag == fmt.Sprint(metricsLag) {
			if metricsLag > 0 && !matchedMoving {
				matchedMoving = true
				t.Logf("%s: the page shows lag %s, as /metrics does", time.Since(began).Round(time.Millisecond), pageLag)
			}
			if metricsLag == 0 && matchedMoving {
				break
			}
			if metricsLag == 0 && ps.Bars > 0 && time.Since(began) > 2*time.Minute {
				// A machine so loaded that the backlog drained before the page could be
				// compared: the final figures are still checked below.
				t.Logf("the backlog drained before a non-zero lag could be compared; the page shows lag 0, as /metrics does")
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed the lag of /metrics (matched a non-zero lag: %v); last: page %q, /metrics %d (known %v); page %+v",
				matchedMoving, pageLag, metricsLag, known, ps)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The whole topic is committed, by this worker, and the commits are charted.
	waitFor := time.Now().Add(15 * time.Second)
	for {
		read()
		var sum int64
		for _, c := range ps.Committed {
			var v int64
			fmt.Sscan(strings.ReplaceAll(c, ",", ""), &v)
			sum += v
		}
		if sum == n && ps.Owners == 3 && ps.Bars > 0 && ps.JS {
			break
		}
		if time.Now().After(waitFor) {
			t.Fatalf("page: committed offsets %v (want a sum of %d), %d partitions owned by this worker (want 3), %d bars, script ran: %v",
				ps.Committed, n, ps.Owners, ps.Bars, ps.JS)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
