package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/produce"
)

// ExitError carries a process exit code without printing more than its message.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// SignalCause is the cause of a context cancelled by a signal.
type SignalCause struct{ Sig os.Signal }

func (s SignalCause) Error() string { return "interrupted by " + s.Sig.String() }

// SignalContext is cancelled by the first SIGINT or SIGTERM, with the signal as its cause
// (InterruptedCode reads it); a second one has its default effect, so that a stuck stop can
// still be forced. Call the returned func when done.
func SignalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(SignalCause{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// InterruptedCode is the exit status of a command that a signal stopped before it was
// done: 128 + the signal's number, as shells report it (130 for SIGINT, 143 for SIGTERM);
// 130 when ctx was cancelled otherwise.
func InterruptedCode(ctx context.Context) int {
	var sc SignalCause
	if errors.As(context.Cause(ctx), &sc) {
		if n, ok := sc.Sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 130
}

// Interrupted makes a producer stopped by a signal exit as shells report the signal.
func Interrupted(ctx context.Context, err error) error {
	var ie *produce.InterruptedError
	if errors.As(err, &ie) {
		return &ExitError{Code: InterruptedCode(ctx), Msg: ie.Error()}
	}
	return err
}

// AddJSONFlag gives a command --json, for its result as one JSON document on stdout (and
// its error as one too: WriteJSONError).
func AddJSONFlag(f *pflag.FlagSet, asJSON *bool) {
	f.BoolVar(asJSON, "json", false, "print one JSON document")
}

// WantsJSON says whether cmd was asked for a JSON document (--json).
func WantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// jsonError is the document a --json command prints on stdout when it fails before its
// own document: scripts parse stdout whatever happened.
type jsonError struct {
	Error struct {
		// What is the error message (on stderr in full); for a damaged file, which file
		// and how, without the hint.
		What string `json:"what"`
		// Path is the file the error is about, when it names one (a damaged table file).
		Path string `json:"path"`
		// Hint says what to do, when known.
		Hint string `json:"hint"`
	} `json:"error"`
}

// WriteJSONError prints err as a jsonError, unless the command already printed its
// document (an *ExitError: a failed check, a report with missing rows).
func WriteJSONError(w io.Writer, err error) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return
	}
	var doc jsonError
	doc.Error.What = err.Error()
	if d, ok := iceberg.AsDamage(err); ok {
		doc.Error.What, doc.Error.Path, doc.Error.Hint = d.What(), d.Path, d.Hint()
	}
	_ = WriteJSON(w, doc)
}

// WriteJSON prints v as one indented JSON document.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
