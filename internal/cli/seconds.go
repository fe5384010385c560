package cli

import (
	"strconv"
	"time"
)

// Seconds is a duration flag that also takes a bare number of seconds, as the notebook's
// *_seconds parameters do.
type Seconds time.Duration

func (s *Seconds) String() string { return time.Duration(*s).String() }

// Type is "duration", so that the range rule reads the value as one.
func (s *Seconds) Type() string { return "duration" }

// Set takes a number of seconds or a Go duration.
func (s *Seconds) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		*s = Seconds(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*s = Seconds(d)
	return nil
}
