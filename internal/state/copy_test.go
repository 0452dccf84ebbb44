package state_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/s3test"
	"github.com/drydock-project/drydock/internal/state"
	"github.com/drydock-project/drydock/internal/store"
)

type scanArgs struct {
	Digest string `json:"digest"`
}

func (scanArgs) Kind() string { return "gate.scan" }

func open(t *testing.T, cfg config.Config) *state.Install {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	i, err := state.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close() })
	return i
}

// populate fills an installation through the components' own APIs and
// returns the images pushed and a token secret.
func populate(t *testing.T, in *state.Install) ([]v1.Hash, string) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.New(ctx, in.Storage.Driver)
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for i := range 3 {
		img, err := random.Image(300_000, 3)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(fmt.Sprintf("drydock.internal/quarantine/app%d:v1", i), name.Insecure)
		if err := remote.Write(ref, img, remote.WithTransport(reg.Transport())); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests = append(digests, d)
	}
	st, err := store.Open(ctx, in.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range digests {
		for k, s := range []gate.State{gate.StatePending, gate.StateFail, gate.StatePass} {
			at := t0.Add(time.Duration(i*10+k) * time.Minute)
			if _, err := st.UpdateImage(ctx, d.String(), func(*store.Image) (*store.Image, error) {
				return &store.Image{Repository: fmt.Sprintf("quarantine/app%d", i), Verdict: gate.Verdict{State: s, At: at}, UpdatedAt: at}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.PutScan(ctx, store.Scan{Digest: d.String(), Repository: "quarantine/app", ScannedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MarkPromoted(ctx, digests[0].String(), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSetting(ctx, "policy-hash", "abc"); err != nil {
		t.Fatal(err)
	}
	as, err := auth.Open(ctx, in.DBs, auth.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	g, _ := auth.ParseGrants([]string{"pull", "push:quarantine"})
	if err := as.AddUser(ctx, "alice", "alice-password", g); err != nil {
		t.Fatal(err)
	}
	secret, _, err := as.CreateToken(ctx, auth.TokenSpec{Name: "ci", Owner: "alice", Grants: g})
	if err != nil {
		t.Fatal(err)
	}
	l, closeLog, err := audit.Open(ctx, in.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	for i := range 40 {
		if _, err := l.Record(ctx, audit.Entry{Actor: "alice", Action: audit.ActionPush, Repository: "quarantine/app", Reference: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	q, err := jobs.Open(ctx, in.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, d := range digests {
		if _, err := q.Enqueue(ctx, scanArgs{Digest: d.String()}, jobs.EnqueueOptions{UniqueKey: d.String()}); err != nil {
			t.Fatal(err)
		}
	}
	return digests, secret
}

// TestCopyEmbeddedToPostgresAndS3 copies a populated embedded installation
// (SQLite files and a filesystem registry) to a real PostgreSQL and a real
// S3 server, then uses the copy through the components' own APIs.
func TestCopyEmbeddedToPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	src := config.Default()
	src.Data = t.TempDir()
	from := open(t, src)
	digests, secret := populate(t, from)

	dst := config.Default()
	dst.Data = t.TempDir()
	dst.Database = dbtest.Postgres(t).Config
	dst.Storage = config.Storage{Driver: "s3", Parameters: s3test.Bucket(t)}
	to := open(t, dst)

	rep, err := state.Copy(ctx, from, to, state.CopyOptions{VerifyContent: true, Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows["images"] != 3 || rep.Rows["verdict_history"] != 9 || rep.Rows["users"] != 1 || rep.Rows["tokens"] != 1 ||
		rep.Rows["audit_log"] != 40 || rep.Jobs != 3 || rep.Registry.Blobs != 3*(1+3+1) || !rep.Audit.OK() {
		t.Errorf("report %+v", rep)
	}

	// The copy works as the original did.
	reg, err := registry.New(ctx, to.Storage.Driver)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range digests {
		ref, _ := name.ParseReference(fmt.Sprintf("drydock.internal/quarantine/app%d:v1", i), name.Insecure)
		img, err := remote.Image(ref, remote.WithTransport(reg.Transport()))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := img.Digest(); got != d {
			t.Errorf("tag resolves to %s in the copy, %s in the source", got, d)
		}
		if err := (func() error { _, err := img.Layers(); return err })(); err != nil {
			t.Error(err)
		}
	}
	as, err := auth.Open(ctx, to.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	if _, err := as.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Errorf("password in the copy: %v", err)
	}
	if _, err := as.AuthenticateToken(ctx, secret); err != nil {
		t.Errorf("token in the copy: %v", err)
	}
	st, err := store.Open(ctx, to.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if im, err := st.Image(ctx, digests[0].String()); err != nil || !im.Promoted || im.Verdict.State != gate.StatePass {
		t.Errorf("verdict in the copy: %+v, %v", im, err)
	}
	// The copy can grow: the history's identity moved past the copied ids.
	if _, err := st.UpdateImage(ctx, digests[1].String(), func(p *store.Image) (*store.Image, error) {
		p.Verdict.State = gate.StateFail
		return p, nil
	}); err != nil {
		t.Errorf("writing to the copy: %v", err)
	}
	q, err := jobs.Open(ctx, to.DBs)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	js, err := q.Jobs(ctx, jobs.Filter{})
	if err != nil || len(js) != 3 || js[0].UniqueKey == "" || js[0].Kind != "gate.scan" {
		t.Errorf("jobs in the copy: %+v, %v", js, err)
	}

	// A second copy into the same target is refused.
	if _, err := state.Copy(ctx, from, to, state.CopyOptions{}); !errors.Is(err, state.ErrTargetNotEmpty) {
		t.Errorf("copying into a non-empty target: %v", err)
	}
}

// TestCopyVerificationCatchesDifferences copies, then damages the copy in
// three ways, each of which verification must report.
func TestCopyVerificationCatchesDifferences(t *testing.T) {
	ctx := context.Background()
	for _, damage := range []struct {
		name string
		do   func(t *testing.T, to *state.Install)
		want string
	}{
		{"a user's hash", func(t *testing.T, to *state.Install) {
			db, err := to.DBs.Open(ctx, auth.Component)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `UPDATE users SET password_hash = 'x'`); err != nil {
				t.Fatal(err)
			}
		}, "users"},
		{"an audit entry", func(t *testing.T, to *state.Install) {
			db, err := to.DBs.Open(ctx, audit.Component)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, s := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 7`} {
				if _, err := db.ExecContext(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
		}, "audit_log"},
		{"a tag", func(t *testing.T, to *state.Install) {
			p := "/docker/registry/v2/repositories/quarantine/app1/_manifests/tags/v1/current/link"
			if err := to.Storage.Driver.PutContent(ctx, p, []byte("sha256:"+strings.Repeat("0", 64))); err != nil {
				t.Fatal(err)
			}
		}, "tags/v1"},
	} {
		t.Run(damage.name, func(t *testing.T) {
			src := config.Default()
			src.Data = t.TempDir()
			from := open(t, src)
			populate(t, from)
			dst := config.Default()
			dst.Data = t.TempDir() // SQLite to SQLite: the verification is the subject
			to := open(t, dst)
			if _, err := state.Copy(ctx, from, to, state.CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			damage.do(t, to)
			err := stateVerify(ctx, from, to)
			if err == nil || !strings.Contains(err.Error(), damage.want) {
				t.Errorf("verification after damaging %s: %v", damage.name, err)
			}
		})
	}
}

// stateVerify runs the copy's verification alone.
func stateVerify(ctx context.Context, from, to *state.Install) error {
	_, err := state.Verify(ctx, from, to, false)
	return err
}
