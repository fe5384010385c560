package engine

// SetStageAheadMin sets how many rows a batch gathers before it writes them while reading
// on, and returns a func that restores the default. Tests make it small so that their
// small batches stage in parts.
func SetStageAheadMin(n int) (restore func()) {
	old := stageAheadMin
	stageAheadMin = n
	return func() { stageAheadMin = old }
}
