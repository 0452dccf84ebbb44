package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
)

// storeGate is the gate's read side on a store (what gatekeeper.Keeper
// does for Images); the benchmarks call nothing else.
type storeGate struct {
	api.Gate
	s store.Store
}

func (g storeGate) Images(ctx context.Context) ([]store.Image, error) {
	return g.s.List(ctx, store.Filter{})
}

// BenchmarkUIAtScale measures the server time of the pages and the API
// route the issue sets goals for, with 10,000 images and 1,000,000
// findings stored through the real store (SQLite): the dashboard (goal
// 300 ms), a page of 100 images (300 ms), and which images contain a CVE
// (200 ms) for a CVE in every image and for a typical one. Figures, not
// assertions: make bench-ui.
func BenchmarkUIAtScale(b *testing.B) {
	ctx := context.Background()
	sc := storetest.Scale{Images: 10000, Repositories: 500, PerImage: 100}
	if testing.Short() {
		sc.Images = 1000
	}
	s, err := store.Open(ctx, storetest.MemorySQLite(b).Opener(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.Populate(b, s, sc)

	st, err := auth.OpenStore(auth.DefaultPath(b.TempDir()), auth.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser(ctx, "root", "root-password", auth.Grants{{Role: auth.RoleAdmin, Namespace: "*"}}); err != nil {
		b.Fatal(err)
	}
	authz := func(r *http.Request, role, repo string) error {
		p, _ := auth.PrincipalFrom(r.Context())
		ns, _, _ := strings.Cut(repo, "/")
		if !p.Allows(auth.Role(role), ns) {
			return fmt.Errorf("%s may not %s %s", p.Name, role, repo)
		}
		return nil
	}
	apiH := api.Handler(api.Options{Gate: storeGate{s: s}, Scans: s, Index: s, Dashboard: s, Authorize: authz})
	ui, err := New(Options{Auth: &auth.Authenticator{Store: st}, API: apiH})
	if err != nil {
		b.Fatal(err)
	}
	sess, err := st.NewSession(ctx, "root", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	root, err := st.Authenticate(ctx, "root", "root-password")
	if err != nil {
		b.Fatal(err)
	}
	get := func(b *testing.B, h http.Handler, path string, withSession bool) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if withSession {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.Secret})
		} else {
			req = req.WithContext(auth.WithPrincipal(req.Context(), root))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String()[:min(rec.Body.Len(), 500)])
		}
	}
	for _, c := range []struct {
		name, path string
		h          http.Handler
		ui         bool
	}{
		{"dashboard", "/ui/", ui, true},
		{"images-page", "/ui/images?page=2", ui, true},
		{"api-cve-in-every-image", "/api/v1/cves/" + storetest.WidespreadCVE, apiH, false},
		{"api-cve-typical", "/api/v1/cves/" + storetest.PoolCVE(1234), apiH, false},
		{"api-cve-in-every-image-last-page", "/api/v1/cves/" + storetest.WidespreadCVE + "?page=" + strconv.Itoa(sc.Images/100), apiH, false},
		{"cve-page-in-every-image", "/ui/cves/" + storetest.WidespreadCVE, ui, true},
		{"api-findings-history", "/api/v1/findings/history", apiH, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				get(b, c.h, c.path, c.ui)
			}
		})
	}
}
