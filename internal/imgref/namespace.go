package imgref

import "strings"

// The gate's namespaces. Content arrives in quarantine; clusters pull
// from live, which only promotion writes.
const (
	Quarantine = "quarantine"
	Live       = "live"
)

// Namespace returns the namespace of a repository: its first path
// component ("quarantine" for "quarantine/nginx", "live" for "live"
// itself; "" for "").
func Namespace(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}

// IsLive reports whether repo is in the live namespace: "live" itself or
// "live/...".
func IsLive(repo string) bool { return Namespace(repo) == Live }

// IsQuarantine reports whether repo is in the quarantine namespace:
// "quarantine" itself or "quarantine/...".
func IsQuarantine(repo string) bool { return Namespace(repo) == Quarantine }

// Rebase returns repo with its namespace replaced by ns:
// Rebase("quarantine/a/b", Live) is "live/a/b", Rebase("quarantine", Live)
// is "live".
func Rebase(repo, ns string) string {
	_, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return ns
	}
	return ns + "/" + rest
}
