// Package replicas tests drydock scaled out as its users run it: several
// `drydock serve` processes (the real binary) sharing a real PostgreSQL
// and a real S3 server, behind a round-robin load balancer on loopback,
// with processes killed and dependencies stopped under load.
package replicas

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/database/pgtest"
	"github.com/drydock-project/drydock/internal/s3test"
)

// drydockBin is the binary built once by TestMain.
var drydockBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drydock-replicas-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	drydockBin = filepath.Join(dir, "drydock")
	build := exec.Command("go", "build", "-o", drydockBin, "github.com/drydock-project/drydock/cmd/drydock")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build drydock:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clusterOptions shape a cluster.
type clusterOptions struct {
	// pg is a dedicated PostgreSQL server (the test stops it); nil uses a
	// fresh database on the test binary's shared server.
	pg *pgtest.Server
	// s3 is a dedicated S3 server; nil uses a bucket on the shared one.
	s3 *s3test.Server
	// gate are extra settings of the gate section.
	gate map[string]any
	// gc is the gc section (nil: the defaults, whose schedule runs a
	// collection at start).
	gc map[string]any
	// s3Endpoint, when set, is where the replicas reach the S3 server (a
	// proxy in front of it).
	s3Endpoint string
}

// cluster is N replicas sharing one database and one bucket, behind a
// round-robin proxy.
type cluster struct {
	t        testing.TB
	config   string // the shared config file
	dsn      string
	s3params map[string]any
	replicas []*replica
	proxy    *httptest.Server
	next     atomic.Uint64
}

// replica is one `drydock serve` process slot: a fixed port and data
// directory that survive restarts.
type replica struct {
	i    int
	addr string
	data string

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	logMu  sync.Mutex
	served int // requests logged by earlier runs of the slot
	exited chan struct{}
}

// requests counts the requests the replica logged, over its restarts.
func (r *replica) requests() int {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	n := r.served
	if r.logs != nil {
		n += strings.Count(r.logs.String(), `"msg":"request"`)
	}
	return n
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster writes the shared config and prepares n replica slots; start
// them with startAll.
func newCluster(t testing.TB, n int, o clusterOptions) *cluster {
	t.Helper()
	var dsn string
	if o.pg != nil {
		dsn = o.pg.NewDatabase(t)
	} else {
		dsn = pgtest.Shared(t).NewDatabase(t)
	}
	srv := o.s3
	if srv == nil {
		srv = s3test.Shared(t)
	}
	params := srv.Parameters(srv.NewBucket(t))
	if o.s3Endpoint != "" {
		params["regionendpoint"] = o.s3Endpoint
	}
	gate := map[string]any{"scanTimeout": "20s", "stuckAfter": "25s"}
	for k, v := range o.gate {
		gate[k] = v
	}
	cfg := map[string]any{
		"database": map[string]any{"driver": "postgres", "dsn": dsn},
		"storage":  map[string]any{"driver": "s3", "parameters": params},
		"gate":     gate,
		"uploads":  map[string]any{"purgeInterval": "10m"},
		// Replicas sign with one key: each generating its own is refused.
		"sign": map[string]any{"key": signingKey(t)},
	}
	if o.gc != nil {
		cfg["gc"] = o.gc
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "replicas.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, config: path, dsn: dsn, s3params: params}
	for i := range n {
		c.replicas = append(c.replicas, &replica{i: i, addr: freeAddr(t), data: t.TempDir()})
	}
	c.proxy = httptest.NewServer(c.balancer())
	t.Cleanup(c.proxy.Close)
	t.Cleanup(func() {
		for _, r := range c.replicas {
			r.kill()
		}
	})
	return c
}

// signingKey writes a new signing key, the one key every replica of a
// cluster signs with, and returns its path: the key drydock generates
// for a single server (attest.LoadKey in an empty directory), named by
// sign.key.
func signingKey(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := attest.LoadKey(attest.KeyOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, attest.KeyFile)
}

// balancer is a round-robin reverse proxy, as a load balancer in front of
// replicas: each request goes to the next replica that accepts a
// connection (a killed one refuses, and is skipped). The Host header is
// kept, so the replicas' auth challenges name the proxy.
func (c *cluster) balancer() http.Handler {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DisableKeepAlives: true, // one connection per request: round robin per request
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			start := c.next.Add(1)
			var lastErr error
			for k := range uint64(len(c.replicas)) {
				r := c.replicas[(start+k)%uint64(len(c.replicas))]
				conn, err := dialer.DialContext(ctx, network, r.addr)
				if err == nil {
					return conn, nil
				}
				lastErr = err
			}
			return nil, lastErr
		},
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replicas"
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1,
		// A client that gives up, or a replica killed mid-request, is
		// expected here; the client sees a 502 or a cut connection.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// Addr is the load balancer's host:port.
func (c *cluster) Addr() string { return strings.TrimPrefix(c.proxy.URL, "http://") }

func (c *cluster) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, r := range c.replicas {
		wg.Go(func() { c.start(r) })
	}
	wg.Wait()
}

// start runs replica r and waits until it answers /readyz.
func (c *cluster) start(r *replica) {
	c.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(drydockBin, "serve", "--config", c.config, "--data", r.data, "--addr", r.addr, "--log-format", "json")
	cmd.Env = append(os.Environ(), "HOME="+r.data)
	r.logMu.Lock()
	if r.logs != nil {
		r.served += strings.Count(r.logs.String(), `"msg":"request"`)
	}
	r.logs = &bytes.Buffer{}
	r.logMu.Unlock()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	logs := r.logs
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			r.logMu.Unlock()
		}
	}()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			r.logMu.Lock()
			defer r.logMu.Unlock()
			c.t.Fatalf("replica %d exited at start:\n%s", r.i, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replica %d not ready after 60s", r.i)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the replica with SIGKILL, as a crash would.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

// ready fetches a replica's /readyz status.
func (r *replica) ready() (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// result of one CLI run.
type result struct {
	Stdout, Stderr string
	Code           int
}

// drydock runs the CLI against the cluster's shared state (--config), with
// stdin.
func (c *cluster) drydock(stdin string, args ...string) result {
	c.t.Helper()
	return runStdin(c.t, stdin, nil, append(args, "--config", c.config)...)
}

func (c *cluster) mustDrydock(stdin string, args ...string) result {
	c.t.Helper()
	r := c.drydock(stdin, args...)
	if r.Code != 0 {
		c.t.Fatalf("drydock %v: exit %d\n%s\n%s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// addUser adds a user with roles through the CLI (into the shared
// database).
func (c *cluster) addUser(name, password string, roles ...string) {
	c.t.Helper()
	args := []string{"user", "add", name, "--password-stdin"}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	c.mustDrydock(password+"\n", args...)
}

// auditVerify checks the shared audit chain and returns its entry count.
func (c *cluster) auditVerify() int {
	c.t.Helper()
	r := c.mustDrydock("", "audit", "verify", "--json")
	var res struct {
		Entries int  `json:"entries"`
		Broken  *any `json:"broken"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.Broken != nil {
		c.t.Fatalf("audit verify: %v %s", err, r.Stdout)
	}
	return res.Entries
}
