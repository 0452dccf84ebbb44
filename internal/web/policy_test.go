package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// memPolicy keeps a policy in memory, validated as the gate does.
type memPolicy struct {
	mu    sync.Mutex
	text  string
	saves []string // actors
}

func (m *memPolicy) Policy(context.Context) (*gatekeeper.PolicyView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := sha256.Sum256([]byte(m.text))
	return &gatekeeper.PolicyView{Text: m.text, SHA256: hex.EncodeToString(sum[:]), Source: "database", Editable: true}, nil
}

func (m *memPolicy) SetPolicy(_ context.Context, actor, text, _ string) (*gatekeeper.PolicyChange, error) {
	if err := gatekeeper.ValidatePolicy(text); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.text = text
	m.saves = append(m.saves, actor)
	sum := sha256.Sum256([]byte(text))
	return &gatekeeper.PolicyChange{SHA256: hex.EncodeToString(sum[:]), Changed: true}, nil
}

// TestPolicyPage: the policy page shows the policy in a form; a bad text
// is shown back with its problems inline (line and field) and nothing
// saved; the form needs the CSRF token; a non-admin gets no Save button
// and a forged save is refused; an admin's save goes through the API.
func TestPolicyPage(t *testing.T) {
	pol := &memPolicy{text: gatekeeper.DefaultPolicy}
	h := newHarness(t, func(o *api.Options) { o.Policy = pol })

	reader := h.client(t)
	reader.login("reader", "reader-password")
	resp, body := reader.do("GET", "/ui/policy", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "maxSeverity: HIGH") || strings.Contains(body, `id="policy-save"`) {
		t.Fatalf("reader's policy page %d:\n%s", resp.StatusCode, body)
	}
	good := "version: v1\nmaxSeverity: CRITICAL\n"
	resp, body = reader.do("POST", "/ui/policy", url.Values{"csrf": {csrfOf(t, body)}, "action": {"save"}, "policy": {good}})
	if resp.StatusCode != 403 || !strings.Contains(body, "admin role") {
		t.Errorf("reader's save: %d\n%s", resp.StatusCode, body)
	}

	root := h.client(t)
	root.login("root", "root-password")
	_, body = root.do("GET", "/ui/policy", nil)
	if !strings.Contains(body, `id="policy-save"`) {
		t.Fatalf("admin's page has no Save button:\n%s", body)
	}
	token := csrfOf(t, body)
	bad := "version: v1\r\nmaxSeverity: EXTREME\r\n# </textarea><script>alert(1)</script>\r\n"
	for _, action := range []string{"validate", "save"} {
		resp, body = root.do("POST", "/ui/policy", url.Values{"csrf": {token}, "action": {action}, "policy": {bad}})
		if resp.StatusCode != 400 || !strings.Contains(body, `aria-invalid="true"`) ||
			!strings.Contains(body, `line 2: <span class="mono">maxSeverity</span>:`) {
			t.Errorf("%s a bad policy: %d\n%s", action, resp.StatusCode, body)
		}
		if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;/textarea&gt;&lt;script&gt;") {
			t.Errorf("%s: the text sent back is not escaped:\n%s", action, body)
		}
	}
	resp, body = root.do("POST", "/ui/policy", url.Values{"csrf": {token}, "action": {"validate"}, "policy": {good}})
	if resp.StatusCode != 200 || !strings.Contains(body, "The policy is valid") {
		t.Errorf("validate a good policy: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := root.do("POST", "/ui/policy", url.Values{"action": {"save"}, "policy": {good}}); resp.StatusCode != 403 {
		t.Errorf("save without the CSRF token: %d", resp.StatusCode)
	}
	if len(pol.saves) != 0 {
		t.Fatalf("saved by %v before a good save", pol.saves)
	}
	resp, _ = root.do("POST", "/ui/policy", url.Values{"csrf": {token}, "action": {"save"}, "policy": {strings.ReplaceAll(good, "\n", "\r\n")}})
	if resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "notice=Policy+saved") {
		t.Fatalf("save: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if pol.text != good || len(pol.saves) != 1 || pol.saves[0] != "root" {
		t.Errorf("stored %q by %v, want the text with LF line ends by root", pol.text, pol.saves)
	}
}
