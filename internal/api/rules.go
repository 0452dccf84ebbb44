package api

// StartsWorkflows reports whether a caller may start workflow runs, for a
// page that offers the action only to who may take it: allows answers
// whether the caller holds role in namespace. The API asks the same
// (writeWorkflows: push in the workflows' namespace).
func StartsWorkflows(allows func(role, namespace string) bool) bool {
	return allows(RolePush, workflowNamespace)
}
