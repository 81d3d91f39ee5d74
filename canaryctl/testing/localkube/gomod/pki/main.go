// Command pki writes the key material a throwaway control plane needs into one directory:
// a CA, a serving certificate for 127.0.0.1/localhost and the in-cluster Service names,
// an admin client certificate in group system:masters, and a ServiceAccount signing key.
// It uses only Go's standard library, so localkube needs neither openssl nor a Python
// crypto package.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

func newKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	return key
}

func writePEM(dir, name, kind string, der []byte) {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	must(os.WriteFile(filepath.Join(dir, name), data, 0o600))
}

func writeKey(dir, name string, key *ecdsa.PrivateKey) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(err)
	writePEM(dir, name, "PRIVATE KEY", der)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	must(err)
	return n
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) []byte {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	must(err)
	return der
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pki DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	must(os.MkdirAll(dir, 0o700))
	now := time.Now().Add(-time.Hour)
	until := now.Add(10 * 365 * 24 * time.Hour)

	caKey := newKey()
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "localkube-ca"},
		NotBefore: now, NotAfter: until, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER := sign(ca, ca, &caKey.PublicKey, caKey)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	writePEM(dir, "ca.crt", "CERTIFICATE", caDER)
	writeKey(dir, "ca.key", caKey)

	servingKey := newKey()
	serving := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	writePEM(dir, "apiserver.crt", "CERTIFICATE", sign(serving, ca, &servingKey.PublicKey, caKey))
	writeKey(dir, "apiserver.key", servingKey)

	adminKey := newKey()
	admin := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "localkube-admin", Organization: []string{"system:masters"}},
		NotBefore: now, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	writePEM(dir, "admin.crt", "CERTIFICATE", sign(admin, ca, &adminKey.PublicKey, caKey))
	writeKey(dir, "admin.key", adminKey)

	saKey := newKey()
	writeKey(dir, "sa.key", saKey)
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	must(err)
	writePEM(dir, "sa.pub", "PUBLIC KEY", pub)
}
