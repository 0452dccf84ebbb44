// Package kubetest runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and kube-controller-manager (the deployment and
// replicaset controllers, so rollouts progress) on loopback, without
// nodes: pods are created and stay Pending unless a test plays the
// kubelet.
//
// The binaries come from `make kube-bins` (hack/kube, a separate module),
// cached in $DRYDOCK_KUBE_BIN or $DRYDOCK_CACHE/kube-<Version>. Without
// them tests skip, except under CI=true, where they fail.
//
// One control plane serves a whole test binary (Shared); tests keep apart
// by namespace (Cluster.Namespace). It is a test-support package: only
// _test.go files import it.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/testenv"
)

// Version is the Kubernetes release hack/kube builds; the Makefile's
// KUBE_VERSION is the same.
const Version = "v1.37.2"

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	dir        string
	procs      []*proc
	nsMu       sync.Mutex
	nsCount    int
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// BinDir is where the binaries are looked for.
func BinDir() (string, error) {
	if d := os.Getenv("DRYDOCK_KUBE_BIN"); d != "" {
		return d, nil
	}
	cache, err := config.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "kube-"+Version), nil
}

// Available reports why the control plane cannot run here (nil when it
// can).
func Available() error {
	dir, err := BinDir()
	if err != nil {
		return err
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("kubetest: %s not built in %s (run make kube-bins: about 10 minutes the first time)", b, dir)
		}
	}
	return nil
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the test binary's control plane, starting it on first
// use. It skips t when the binaries are missing (fails under CI=true).
// Call Stop from TestMain (Main does) to end it.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if err := Available(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	shared.once.Do(func() { shared.c, shared.err = Start(context.Background()) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

// Main runs the tests and stops the shared control plane:
// func TestMain(m *testing.M) { kubetest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// StopShared stops the shared control plane if one was started (for a
// TestMain that does more than Main).
func StopShared() {
	if shared.c != nil {
		shared.c.Stop()
	}
}

// Start starts etcd, kube-apiserver and kube-controller-manager and waits
// until the API server is ready.
func Start(ctx context.Context) (_ *Cluster, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := c.spawn("etcd", filepath.Join(bin, "etcd"),
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil, 30*time.Second); err != nil {
		return nil, err
	}

	token := randomHex(16)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	if err := c.spawn("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]), "--endpoint-reconciler-type=none",
		"--cert-dir="+certDir, "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24", "--disable-admission-plugins=ServiceAccount",
		"--profiling=false", "--enable-priority-and-fairness=false",
	); err != nil {
		return nil, err
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.waitHTTP(ctx, "kube-apiserver", host+"/readyz", &token, 90*time.Second); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver's certificate: %w", err)
	}
	c.Config = &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: 200, Burst: 400}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		return nil, err
	}
	if err := c.spawn("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig, "--controllers=deployment,replicaset",
		"--leader-elect=false", "--secure-port=0",
	); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops the controller manager and the API server, then etcd, and
// removes the cluster's files.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
	_ = os.RemoveAll(c.dir)
}

// Namespace creates a namespace of its own for t (prefix-N) and returns
// its name.
func (c *Cluster) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	c.nsMu.Lock()
	c.nsCount++
	name := fmt.Sprintf("%s-%d", prefix, c.nsCount)
	c.nsMu.Unlock()
	if _, err := c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// Logs returns the end of each process's log, for a failing test.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(p.log)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", p.name, data)
	}
	return b.String()
}

func (c *Cluster) spawn(name, bin string, args ...string) error {
	logPath := filepath.Join(c.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The control plane dies with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	c.procs = append(c.procs, p)
	return nil
}

// waitHTTP polls url until it answers 200, the process exits, or the time
// runs out.
func (c *Cluster) waitHTTP(ctx context.Context, name, url string, token *string, limit time.Duration) error {
	p := c.procs[len(c.procs)-1]
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != nil {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited while starting (%v):\n%s", name, err, c.Logs())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s:\n%s", name, limit, c.Logs())
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeRSAKey(path string) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// ErrTimeout is returned by Eventually when the condition never held.
var ErrTimeout = errors.New("kubetest: condition not met in time")

// Eventually polls cond every 50 ms until it returns true or an error, or
// limit passes.
func Eventually(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// insecureTLS is for polling readiness only: the API server's certificate
// is read from its cert dir once it is up.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // readiness probe on loopback
