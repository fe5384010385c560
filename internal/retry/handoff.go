package retry

import (
	"fmt"
	"time"
)

// HandOff is the rule for giving partitions up (docs/design.md §7): a worker that has been
// cut off from dep for down gives its partitions up once down reaches after, its consumer
// group session timeout, so that a worker that can still reach dep takes them over instead
// of leaving them stalled behind a session this worker keeps alive. Only the catalog and
// the storage count: a worker cut off from Kafka loses its session by itself (its
// heartbeats do not arrive), and could not leave the group anyway. after <= 0 never hands
// off.
func HandOff(dep Dependency, down, after time.Duration) bool {
	if after <= 0 || (dep != Catalog && dep != Storage) {
		return false
	}
	return down >= after
}

// HandOffError ends a wait on the catalog or the storage that lasted as long as the group
// session timeout (Policy.HandOffAfter): the worker should drop what it holds, leave the
// consumer group so that another worker takes its partitions, wait for the dependency,
// and join again.
type HandOffError struct {
	Dependency Dependency
	Op         string
	// For is how long the dependency has been down, After the session timeout it reached.
	For, After time.Duration
	Err        error // the last failure
}

func (e *HandOffError) Error() string {
	return fmt.Sprintf("%s unreachable for %s (the group session timeout is %s) during %s: giving the partitions up: last error: %v",
		e.Dependency, e.For.Round(time.Second), e.After, e.Op, e.Err)
}

// Unwrap returns the last failure.
func (e *HandOffError) Unwrap() error { return e.Err }
