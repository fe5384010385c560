package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/pipeline"
)

// isTerminal reports whether w is a terminal, where a progress line can be rewritten in
// place (a character device; pipes and files are not).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress prints a progress line: rewritten in place every second on a terminal,
// a plain line every ten seconds elsewhere (logs, CI).
type Progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	width    int
}

// NewProgress returns a Progress that prints on w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, terminal: isTerminal(w)}
}

// Period is how often the caller should offer a line.
func (p *Progress) Period() time.Duration {
	if p.terminal {
		return time.Second
	}
	return 10 * time.Second
}

// Show prints line (final forces it and ends a terminal line).
func (p *Progress) Show(line string, final bool) {
	if !final && time.Since(p.last) < p.Period()-50*time.Millisecond {
		return
	}
	p.last = time.Now()
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = fmt.Sprintf("%*s", n, "")
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
	if final {
		fmt.Fprintln(p.w)
	}
}

// ETA formats the time to process remaining items at rate per second.
func ETA(remaining int64, rate float64) string {
	if remaining <= 0 {
		return "0s"
	}
	if rate <= 0 {
		return "?"
	}
	return (time.Duration(float64(remaining)/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
}

// runProgressLine formats a run's progress (--available-now).
func runProgressLine(p pipeline.Progress) string {
	rate := float64(p.Records) / max(p.Elapsed.Seconds(), 1e-9)
	s := fmt.Sprintf("progress: %d records, %d accepted, %d rejected, %.0f/s", p.Records, p.Accepted, p.Rejected, rate)
	if p.LagKnown {
		s += fmt.Sprintf(", lag %d, ETA %s", p.Lag, ETA(p.Lag, rate))
	}
	return s
}
