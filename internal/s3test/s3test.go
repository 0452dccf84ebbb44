// Package s3test runs a real S3-compatible object store for tests:
// versitygw (hack/s3server), built once into the cache by `make s3server`
// (a dependency of `make test`), serving a temporary directory on a
// loopback port as a child of the test binary.
//
// Shared returns one server per test binary; each test gets its own bucket
// (NewBucket). New starts a dedicated server that a test may stop and start
// again (outage tests). Parameters gives the settings of distribution's s3
// driver (`storage: {driver: s3, parameters: ...}`) for a bucket.
//
// Outside CI a machine without the built server skips the tests that need
// it, saying how to build it; under CI=true they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/drydock-project/drydock/internal/testenv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"

	"github.com/drydock-project/drydock/internal/config"
)

// Version is the versitygw release hack/s3server pins; the binary is
// $DRYDOCK_CACHE/tools/versitygw-<Version>.
const Version = "v1.8.0"

// Region is the region every test bucket lives in.
const Region = "us-east-1"

// Server is a running S3 server.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint             string
	AccessKey, SecretKey string
	// Dir holds the served directory (Dir/data) and the server log.
	Dir  string
	port int
	bin  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	buckets atomic.Int64
}

// Binary returns the path of the cached server binary.
func Binary() (string, error) {
	cache, err := config.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "tools", "versitygw-"+Version), nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// New starts a dedicated server for t, stopped when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		_ = s.Stop()
		_ = os.RemoveAll(s.Dir)
	})
	return s
}

type missingError struct{ path string }

func (e *missingError) Error() string {
	return fmt.Sprintf("no S3 server binary at %s", e.path)
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	var m *missingError
	if errors.As(err, &m) {
		testenv.Missing(t, "S3: %v (build it with `make s3server`, which `make test` runs)", err)
	}
	t.Fatalf("starting the S3 server for the tests: %v", err)
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, &missingError{bin}
	}
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	if err := testenv.OwnDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	var key [12]byte
	_, _ = rand.Read(key[:])
	s := &Server{Dir: dir, bin: bin, AccessKey: "drydock-test", SecretKey: hex.EncodeToString(key[:])}
	var lastErr error
	for range 5 { // another process may take the free port first
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.port)
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// dirPrefix names the temporary directories of test servers.
const dirPrefix = "drydock-s3test-"

// sweep removes the directories of servers whose test binary is gone (the
// server died with it).
func sweep() {
	testenv.SweepDirs(filepath.Join(os.TempDir(), dirPrefix+"*"), func(d string) { _ = os.RemoveAll(d) })
}

// Start starts the server (again, after Stop) on its port and waits until
// it answers.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("s3test: server already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", "127.0.0.1:"+strconv.Itoa(s.port), "posix", filepath.Join(s.Dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.Dir
	// Started from a goroutine whose thread never exits, so that the parent
	// death signal fires only when the test binary ends.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		errc <- cmd.Start()
		select {}
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("starting versitygw: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
			return fmt.Errorf("versitygw exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw not answering after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop kills the server, as an outage would, and waits for it to exit.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
	return nil
}

func (s *Server) client() *s3.S3 {
	sess := session.Must(session.NewSession(&aws.Config{
		Region: aws.String(Region), Endpoint: aws.String(s.Endpoint), S3ForcePathStyle: aws.Bool(true),
		Credentials: credentials.NewStaticCredentials(s.AccessKey, s.SecretKey, ""),
	}))
	return s3.New(sess)
}

// NewBucket creates an empty bucket for t and returns its name. Buckets
// are left behind with the server's directory.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", os.Getpid(), s.buckets.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.client().CreateBucketWithContext(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// Parameters are the settings of distribution's s3 driver for bucket.
func (s *Server) Parameters(bucket string) map[string]any {
	return map[string]any{
		"accesskey":      s.AccessKey,
		"secretkey":      s.SecretKey,
		"region":         Region,
		"regionendpoint": s.Endpoint,
		"forcepathstyle": true,
		"secure":         false,
		"bucket":         bucket,
		// The smallest part size S3 allows, so tests cross part boundaries
		// with small blobs.
		"chunksize": 5 << 20,
	}
}

// Bucket creates a bucket on the shared server for t and returns the s3
// driver's parameters for it.
func Bucket(t testing.TB) map[string]any {
	t.Helper()
	s := Shared(t)
	return s.Parameters(s.NewBucket(t))
}
