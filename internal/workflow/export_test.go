package workflow

// SetAfterWrite sets the hook that runs right after a patch's tag is
// written; its error stops the job there, recording nothing, as a crash
// would.
func SetAfterWrite(e *Engine, f func(taskID string) error) { e.afterWrite = f }
