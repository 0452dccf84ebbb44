package attest

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// Key is drydock's signing key: a private key, its public key's ID and a
// self-signed code-signing certificate for Notary Project signatures
// (which always carry a certificate chain).
type Key struct {
	signer crypto.Signer
	chain  []*x509.Certificate
	id     string
	closer io.Closer // a PKCS#11 session; nil for a key in memory
}

// Files of the key drydock generates in its data directory.
const (
	KeyFile         = "drydock.key" // PKCS#8, PEM, mode 0600
	PublicKeyFile   = "drydock.pub" // PKIX, PEM: what `cosign verify --key` takes
	CertificateFile = "drydock.crt" // self-signed code-signing certificate: a Notary Project trust store's root
)

// maxKeyFile bounds a key or certificate file.
const maxKeyFile = 1 << 20

// ErrKeyURI marks a key reference drydock cannot use.
var ErrKeyURI = errors.New("unsupported key reference")

// KeyOptions say where drydock's signing key comes from.
type KeyOptions struct {
	// Dir is where the key is generated when Ref is empty (DATA/keys).
	Dir string
	// Ref is a key file (PEM: PKCS#8, EC or PKCS#1 private key, or
	// cosign's encrypted key format), a PKCS#11 URI (RFC 7512, see
	// parsePKCS11URI; builds with cgo only); empty uses or generates
	// Dir's key. KMS URIs (awskms://, gcpkms://, azurekms://,
	// hashivault://) are refused with ErrKeyURI: drydock holds no cloud
	// SDK, and no KMS can be reached to test one.
	Ref string
	// Password decrypts an encrypted key file (cosign's format), or is
	// the PKCS#11 PIN when the URI names none.
	Password []byte
	// Certificate is a PEM certificate chain for the key (leaf first);
	// empty makes a self-signed certificate, kept beside a generated key.
	Certificate string
	// Now dates a generated certificate.
	Now func() time.Time
}

// LoadKey returns drydock's signing key as o says: the key file o.Ref,
// the key a PKCS#11 URI names, or the key in o.Dir, generated there on
// first use. A PKCS#11 key holds a session open until Close.
func LoadKey(o KeyOptions) (*Key, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if strings.HasPrefix(o.Ref, pkcs11Scheme) {
		return loadPKCS11(o)
	}
	if scheme, _, ok := strings.Cut(o.Ref, "://"); ok {
		return nil, fmt.Errorf("%w %q: %s keys are not supported; this build signs with %s", ErrKeyURI, o.Ref, scheme, SupportedKeyRefs())
	}
	path, certPath := o.Ref, ""
	if path == "" {
		if o.Dir == "" {
			return nil, errors.New("signing key: no key file and no key directory")
		}
		path, certPath = filepath.Join(o.Dir, KeyFile), filepath.Join(o.Dir, CertificateFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := generateKeyFiles(o.Dir, o.Now()); err != nil {
				return nil, err
			}
		}
	}
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	signer, err := ParsePrivateKey(data, o.Password)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	k := &Key{signer: signer}
	if k.id, err = KeyID(signer.Public()); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if err := k.setChain(path, cmp.Or(o.Certificate, certPath), nil, o.Now()); err != nil {
		return nil, err
	}
	return k, nil
}

// SupportedKeyRefs says which key references this build signs with.
func SupportedKeyRefs() string {
	s := "a key file (PEM, or cosign's encrypted format), or the generated key (no key named: DATA/keys/drydock.key)"
	if pkcs11Supported {
		return s + ", or a PKCS#11 URI (pkcs11:token=LABEL;object=LABEL?module-path=MODULE&pin-source=file:PINFILE)"
	}
	return s + "; PKCS#11 URIs need a build with cgo"
}

// loadPKCS11 opens the key the PKCS#11 URI o.Ref names. Its certificate
// is o.Certificate, else the one stored with the key on the token, else a
// self-signed one made afresh.
func loadPKCS11(o KeyOptions) (*Key, error) {
	u, err := parsePKCS11URI(o.Ref)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	var pin string
	if pkcs11Supported {
		if pin, err = u.pin(o.Password); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", u, err)
		}
	}
	signer, stored, closer, err := openPKCS11(u, pin)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k := &Key{signer: signer, closer: closer}
	if err := k.fromToken(u, o.Certificate, stored, o.Now()); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// fromToken checks the token's key and gives it its ID and certificate.
func (k *Key) fromToken(u *pkcs11URI, certPath string, stored *x509.Certificate, now time.Time) error {
	if err := checkPublic(k.signer.Public()); err != nil {
		return fmt.Errorf("signing key %s: %w", u, err)
	}
	id, err := KeyID(k.signer.Public())
	if err != nil {
		return fmt.Errorf("signing key %s: %w", u, err)
	}
	k.id = id
	return k.setChain(u.String(), certPath, stored, now)
}

// setChain gives k its certificate chain: the PEM file certPath, else
// stored (a certificate kept with the key), else a self-signed one made
// afresh (it only names the key for Notary Project verifiers). name
// names the key in messages.
func (k *Key) setChain(name, certPath string, stored *x509.Certificate, now time.Time) error {
	switch {
	case certPath != "":
		chain, err := readChain(certPath)
		if err != nil {
			return fmt.Errorf("signing certificate: %w", err)
		}
		k.chain = chain
	case stored != nil:
		k.chain, certPath = []*x509.Certificate{stored}, "stored with "+name
	default:
		c, err := selfSigned(k.signer, now)
		if err != nil {
			return err
		}
		k.chain = []*x509.Certificate{c}
		return nil
	}
	if id, err := KeyID(k.chain[0].PublicKey); err != nil || id != k.id {
		return fmt.Errorf("signing certificate %s: its public key is not the signing key's", certPath)
	}
	return nil
}

// Close releases what the key holds open (a PKCS#11 session); a key
// from a file holds nothing.
func (k *Key) Close() error {
	if k.closer == nil {
		return nil
	}
	return k.closer.Close()
}

// NewKey wraps a signer (and its certificate chain, leaf first; nil makes
// a self-signed certificate) as a Key.
func NewKey(signer crypto.Signer, chain []*x509.Certificate, now time.Time) (*Key, error) {
	id, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		c, err := selfSigned(signer, now)
		if err != nil {
			return nil, err
		}
		chain = []*x509.Certificate{c}
	}
	return &Key{signer: signer, chain: chain, id: id}, nil
}

// GenerateKey makes a new ECDSA P-256 key (what cosign generate-key-pair
// makes) with a self-signed certificate.
func GenerateKey(now time.Time) (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return NewKey(priv, nil, now)
}

// ID is the key's ID: "sha256:" and the hex SHA-256 of its public key
// (PKIX DER).
func (k *Key) ID() string { return k.id }

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// PublicKey returns the key's public half, named name, to verify with.
func (k *Key) PublicKey(name string) PublicKey {
	return PublicKey{Name: name, Key: k.signer.Public(), ID: k.id}
}

// Signer returns the private key as a crypto.Signer.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Chain returns the certificate chain, leaf first.
func (k *Key) Chain() []*x509.Certificate { return k.chain }

// PublicPEM returns the public key as PEM (PKIX), as cosign writes it.
func (k *Key) PublicPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(k.signer.Public())
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// CertificatePEM returns the certificate chain as PEM.
func (k *Key) CertificatePEM() []byte {
	var out []byte
	for _, c := range k.chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyID returns "sha256:<hex>" of a public key's PKIX DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// PublicKey is a public key that verifies signatures, with a name to show.
type PublicKey struct {
	Name string
	Key  crypto.PublicKey
	ID   string
}

// ParsePublicKey reads a PEM public key (PKIX), or the public key of a PEM
// certificate.
func ParsePublicKey(name string, data []byte) (PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return PublicKey{}, fmt.Errorf("public key %s: no PEM block", name)
	}
	var pub crypto.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		p, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return PublicKey{}, fmt.Errorf("public key %s: %w", name, err)
		}
		pub = p
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return PublicKey{}, fmt.Errorf("public key %s: %w", name, err)
		}
		pub = c.PublicKey
	default:
		return PublicKey{}, fmt.Errorf("public key %s: PEM block %q, want PUBLIC KEY or CERTIFICATE", name, block.Type)
	}
	id, err := KeyID(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key %s: %w", name, err)
	}
	return PublicKey{Name: name, Key: pub, ID: id}, nil
}

// ReadPublicKey reads a public key file (see ParsePublicKey); it is named
// by its path.
func ReadPublicKey(path string) (PublicKey, error) {
	data, err := readBounded(path)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key: %w", err)
	}
	return ParsePublicKey(path, data)
}

// ParsePrivateKey reads a PEM private key: PKCS#8, SEC 1 (EC) or PKCS#1
// (RSA), or cosign's "ENCRYPTED SIGSTORE PRIVATE KEY" (scrypt and
// secretbox) with password.
func ParsePrivateKey(data, password []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	der := block.Bytes
	switch block.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		var err error
		if der, err = decryptCosign(der, password); err != nil {
			return nil, err
		}
		fallthrough
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8 key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key of type %T cannot sign", k)
		}
		return checkSigner(s)
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("EC key: %w", err)
		}
		return checkSigner(k)
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("RSA key: %w", err)
		}
		return checkSigner(k)
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// checkSigner accepts the key types cosign and the Notary Project both
// verify (see checkPublic).
func checkSigner(s crypto.Signer) (crypto.Signer, error) {
	if err := checkPublic(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPublic accepts the public keys of the types cosign and the Notary
// Project both verify: ECDSA P-256/384/521 and RSA of 2048 bits or more.
func checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA key on curve %s: use P-256, P-384 or P-521", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits: use 2048 or more", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return errors.New("ed25519 keys cannot make Notary Project signatures: use ECDSA or RSA")
	}
	return fmt.Errorf("key type %T is not supported (ECDSA or RSA)", pub)
}

// decryptCosign opens cosign's encrypted key format (that of
// go-securesystemslib's encrypted package): scrypt derives a secretbox
// key from the password.
func decryptCosign(data, password []byte) ([]byte, error) {
	var env struct {
		KDF struct {
			Name   string `json:"name"`
			Params struct {
				N, R, P int
			} `json:"params"`
			Salt []byte `json:"salt"`
		} `json:"kdf"`
		Cipher struct {
			Name  string `json:"name"`
			Nonce []byte `json:"nonce"`
		} `json:"cipher"`
		Ciphertext []byte `json:"ciphertext"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	p := env.KDF.Params
	if env.KDF.Name != "scrypt" || env.Cipher.Name != "nacl/secretbox" || len(env.Cipher.Nonce) != 24 {
		return nil, fmt.Errorf("encrypted key: kdf %q, cipher %q: want scrypt and nacl/secretbox", env.KDF.Name, env.Cipher.Name)
	}
	if p.N <= 1 || p.N > 1<<20 || p.R <= 0 || p.R > 32 || p.P <= 0 || p.P > 16 {
		return nil, fmt.Errorf("encrypted key: scrypt parameters N=%d r=%d p=%d out of range", p.N, p.R, p.P)
	}
	secret, err := scrypt.Key(password, env.KDF.Salt, p.N, p.R, p.P, 32)
	if err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	var key [32]byte
	var nonce [24]byte
	copy(key[:], secret)
	copy(nonce[:], env.Cipher.Nonce)
	out, ok := secretbox.Open(nil, env.Ciphertext, &nonce, &key)
	if !ok {
		return nil, errors.New("encrypted key: wrong password (or a damaged key)")
	}
	return out, nil
}

// generateKeyFiles writes a new key, its public key and a self-signed
// certificate into dir. The private key is written last, by rename, so a
// crash leaves no key without its companions.
func generateKeyFiles(dir string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	k, err := GenerateKey(now)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{PublicKeyFile, k.PublicPEM(), 0o644},
		{CertificateFile, k.CertificatePEM(), 0o644},
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
	} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return nil
}

// selfSigned makes the self-signed code-signing certificate a Notary
// Project verifier accepts as its own root: digital signature only, code
// signing, not a CA, valid ten years from now (backdated an hour).
func selfSigned(s crypto.Signer, now time.Time) (*x509.Certificate, error) {
	id, err := KeyID(s.Public())
	if err != nil {
		return nil, err
	}
	serial, _ := new(big.Int).SetString(strings.TrimPrefix(id, "sha256:")[:32], 16)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "drydock", Organization: []string{"drydock"}, SerialNumber: id},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.AddDate(10, 0, 0).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		return nil, fmt.Errorf("making the signing certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func readChain(path string) ([]*x509.Certificate, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	out, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// ParseCertificates reads the PEM certificates of data.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// ReadCertificates reads a PEM file of certificates (trust roots).
func ReadCertificates(path string) ([]*x509.Certificate, error) { return readChain(path) }

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}
