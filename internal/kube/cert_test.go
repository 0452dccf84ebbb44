package kube

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func verifyFor(t *testing.T, c *Certs, host string, at time.Time) error {
	t.Helper()
	cert, err := c.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CABundle()) {
		t.Fatal("no CA in the bundle")
	}
	_, err = cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func TestGeneratedCerts(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	o := CertOptions{Dir: dir, Hosts: []string{"127.0.0.1", "drydock.example.com"}, Now: clock.Now}
	c, err := LoadCerts(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "drydock.example.com"} {
		if err := verifyFor(t, c, h, clock.Now()); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if verifyFor(t, c, "evil.example.com", clock.Now()) == nil {
		t.Error("the certificate is valid for a host it does not name")
	}
	if st, _ := os.Stat(filepath.Join(dir, tlsKey)); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode())
	}
	first, _ := c.GetCertificate(nil)

	// A restart keeps the CA and the serving certificate.
	c2, err := LoadCerts(o)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c2.GetCertificate(nil)
	if string(c2.CABundle()) != string(c.CABundle()) || !again.Leaf.Equal(first.Leaf) {
		t.Error("a restart made new certificates")
	}

	// Near its end the serving certificate is renewed by the same CA.
	clock.Add(servingLifetime - renewBefore + time.Hour)
	renewed, _ := c2.GetCertificate(nil)
	if renewed.Leaf.Equal(first.Leaf) {
		t.Fatal("not renewed 29 days before its end")
	}
	if err := verifyFor(t, c2, "drydock.example.com", clock.Now()); err != nil || string(c2.CABundle()) != string(c.CABundle()) {
		t.Errorf("renewed certificate: %v (same CA: %v)", err, string(c2.CABundle()) == string(c.CABundle()))
	}

	// New host names: a new certificate naming them, same CA.
	o.Hosts = []string{"10.0.0.5"}
	c3, err := LoadCerts(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyFor(t, c3, "10.0.0.5", clock.Now()); err != nil || string(c3.CABundle()) != string(c.CABundle()) {
		t.Errorf("after a host change: %v", err)
	}
}

func TestGivenCerts(t *testing.T) {
	// Certificates made by the generator stand in for a certificate
	// manager's files.
	src := t.TempDir()
	if _, err := LoadCerts(CertOptions{Dir: src, Hosts: []string{"a.example.com"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cp := func(from, to string) {
		b, err := os.ReadFile(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(tlsCert, "tls.crt")
	cp(tlsKey, "tls.key")
	cp(caCertFile, "ca.crt")
	c, err := LoadCerts(CertOptions{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyFor(t, c, "a.example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A rotation is picked up.
	src2 := t.TempDir()
	if _, err := LoadCerts(CertOptions{Dir: src2, Hosts: []string{"b.example.com"}}); err != nil {
		t.Fatal(err)
	}
	src = src2
	time.Sleep(10 * time.Millisecond)
	cp(tlsCert, "tls.crt")
	cp(tlsKey, "tls.key")
	cp(caCertFile, "ca.crt")
	if err := verifyFor(t, c, "b.example.com", time.Now()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}

	for _, o := range []CertOptions{
		{CertFile: "x"},
		{Dir: t.TempDir()},
		{CertFile: filepath.Join(dir, "missing"), KeyFile: filepath.Join(dir, "tls.key")},
	} {
		if _, err := LoadCerts(o); err == nil {
			t.Errorf("LoadCerts(%+v) accepted", o)
		}
	}
}
