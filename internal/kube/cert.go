package kube

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Lifetimes of the generated certificates. The serving certificate is
// renewed (by the same CA, so the caBundle in the cluster stays valid)
// when less than renewBefore of it remains or its names change.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	servingLifetime = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// CertOptions say where the webhook's TLS certificate comes from.
type CertOptions struct {
	// CertFile and KeyFile are a serving certificate (PEM) given in
	// configuration; CAFile, optional, is the bundle the API server
	// verifies it with. When CertFile is empty a CA and a serving
	// certificate are generated and kept in Dir.
	CertFile, KeyFile, CAFile string
	// Dir keeps the generated CA and serving certificate.
	Dir string
	// Hosts are the DNS names and IP addresses the API server reaches the
	// webhook at: the generated certificate's subject alternative names.
	Hosts []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Certs is the webhook's serving certificate. Given files are read again
// when they change (a certificate manager rotating them); generated ones
// are renewed before they expire.
type Certs struct {
	o  CertOptions
	mu sync.Mutex
	// cur is the loaded certificate; stamp the given files' modification
	// times it was loaded at.
	cur   *tls.Certificate
	leaf  *x509.Certificate
	stamp string
	ca    []byte
}

// Generated file names under CertOptions.Dir.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
	tlsCert    = "tls.crt"
	tlsKey     = "tls.key"
)

// LoadCerts loads (or generates) the certificate.
func LoadCerts(o CertOptions) (*Certs, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("kube.webhook: give both certFile and keyFile, or neither")
	}
	if o.CertFile == "" && len(o.Hosts) == 0 {
		return nil, errors.New("kube.webhook: no host names for the generated certificate (kube.webhook.hosts)")
	}
	c := &Certs{o: o}
	if _, err := c.get(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate is tls.Config's GetCertificate.
func (c *Certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.get() }

// CABundle returns the PEM bundle the API server verifies the webhook
// with: the generated CA, or the configured caFile (nil when none is
// configured: the API server's system roots).
func (c *Certs) CABundle() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ca)
}

func (c *Certs) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.CertFile != "" {
		return c.loadGiven()
	}
	if c.cur != nil && c.valid(c.leaf) {
		return c.cur, nil
	}
	return c.generate()
}

// loadGiven (re)loads the configured files when their modification times
// changed.
func (c *Certs) loadGiven() (*tls.Certificate, error) {
	stamp := ""
	for _, f := range []string{c.o.CertFile, c.o.KeyFile, c.o.CAFile} {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			if c.cur != nil {
				return c.cur, nil // keep serving through a rotation's rename
			}
			return nil, fmt.Errorf("kube.webhook: %w", err)
		}
		stamp += fmt.Sprintf("%s:%d:%d;", f, st.ModTime().UnixNano(), st.Size())
	}
	if c.cur != nil && stamp == c.stamp {
		return c.cur, nil
	}
	cert, err := tls.LoadX509KeyPair(c.o.CertFile, c.o.KeyFile)
	if err != nil {
		if c.cur != nil {
			return c.cur, nil
		}
		return nil, fmt.Errorf("kube.webhook: certFile %s, keyFile %s: %w", c.o.CertFile, c.o.KeyFile, err)
	}
	var ca []byte
	if c.o.CAFile != "" {
		if ca, err = os.ReadFile(c.o.CAFile); err != nil {
			return nil, fmt.Errorf("kube.webhook.caFile: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("kube.webhook.caFile %s: no PEM certificate in it", c.o.CAFile)
		}
	}
	c.cur, c.leaf, c.stamp, c.ca = &cert, cert.Leaf, stamp, ca
	return c.cur, nil
}

// valid reports whether a generated serving certificate can still serve:
// not near its end, and naming exactly the configured hosts.
func (c *Certs) valid(leaf *x509.Certificate) bool {
	now := c.o.Now()
	if leaf == nil || now.Before(leaf.NotBefore) || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	dns, ips := splitHosts(c.o.Hosts)
	if !slices.Equal(leaf.DNSNames, dns) || len(leaf.IPAddresses) != len(ips) {
		return false
	}
	for i := range ips {
		if !leaf.IPAddresses[i].Equal(ips[i]) {
			return false
		}
	}
	return true
}

func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// generate loads the kept certificate from Dir if it is still valid, or
// makes a new one signed by the kept CA (making the CA first if needed).
func (c *Certs) generate() (*tls.Certificate, error) {
	dir := c.o.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kube webhook certificate: %w", err)
	}
	caCert, caKey, err := c.loadOrMakeCA()
	if err != nil {
		return nil, err
	}
	if cert, err := tls.LoadX509KeyPair(filepath.Join(dir, tlsCert), filepath.Join(dir, tlsKey)); err == nil &&
		c.valid(cert.Leaf) && cert.Leaf.CheckSignatureFrom(caCert) == nil {
		c.cur, c.leaf = &cert, cert.Leaf
		return c.cur, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := c.o.Now()
	dns, ips := splitHosts(c.o.Hosts)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "drydock admission webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(servingLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("kube webhook certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := writeFileAtomic(filepath.Join(dir, tlsKey), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, tlsCert), certPEM, 0o644); err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.cur, c.leaf = &cert, cert.Leaf
	return c.cur, nil
}

func (c *Certs) loadOrMakeCA() (*x509.Certificate, crypto.Signer, error) {
	dir := c.o.Dir
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	// A CA that is missing, unreadable or near its end is replaced; the
	// caBundle in the cluster must then be installed again.
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && c.o.Now().Before(pair.Leaf.NotAfter.Add(-renewBefore)) {
		if signer, ok := pair.PrivateKey.(crypto.Signer); ok {
			c.ca, _ = os.ReadFile(certPath)
			return pair.Leaf, signer, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := c.o.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "drydock admission webhook CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(caLifetime),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("kube webhook CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, nil, err
	}
	c.ca = certPEM
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader never sees half a key.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
