package client

import (
	"errors"
	"strings"
	"testing"
)

func TestHasher(t *testing.T) {
	pb, err := NewHasher(HasherOptions{Algorithm: HashPBKDF2, PBKDF2Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := NewHasher(HasherOptions{Algorithm: HashBCrypt, BCryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Hasher{pb, bc} {
		t.Run(h.Algorithm(), func(t *testing.T) {
			const secret = "s3cr3t-+/%:é"
			enc, err := h.Hash(secret)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(enc, secret) {
				t.Fatal("hash contains the secret")
			}
			again, _ := h.Hash(secret)
			if again == enc {
				t.Fatal("hashes are not salted")
			}
			// Verification does not depend on the hasher's algorithm.
			for _, v := range []*Hasher{pb, bc} {
				if err := v.Verify(enc, secret); err != nil {
					t.Errorf("verify with %s hasher: %v", v.Algorithm(), err)
				}
				if err := v.Verify(enc, secret+"x"); !errors.Is(err, ErrSecretMismatch) {
					t.Errorf("wrong secret: want ErrSecretMismatch, got %v", err)
				}
				if err := v.Verify(enc, ""); !errors.Is(err, ErrSecretMismatch) {
					t.Errorf("empty secret: want ErrSecretMismatch, got %v", err)
				}
			}
		})
	}
}

func TestPBKDF2Encoding(t *testing.T) {
	h, _ := NewHasher(HasherOptions{PBKDF2Iterations: 1234})
	enc, _ := h.Hash("secret")
	parts := strings.Split(enc, "$")
	if len(parts) != 5 || parts[1] != "pbkdf2-sha256" || parts[2] != "i=1234,l=32" {
		t.Fatalf("unexpected encoding %q", enc)
	}
	// The default hasher uses 25,000 iterations.
	d, _ := NewHasher(HasherOptions{})
	enc, _ = d.Hash("secret")
	if !strings.HasPrefix(enc, "$pbkdf2-sha256$i=25000,l=32$") {
		t.Fatalf("default encoding %q", enc)
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, enc := range []string{
		"plain", "$pbkdf2-sha256$", "$pbkdf2-sha256$i=x,l=32$AAAA$AAAA", "$pbkdf2-sha256$i=1,l=32$AAAA$AAAA",
		"$pbkdf2-sha256$i=99999999999,l=32$AAAA$" + strings.Repeat("A", 43), "$pbkdf2-sha256$i=10,l=4096$AAAA$AAAA",
		"$pbkdf2-sha256$i=10,l=32,q=1$AAAA$AAAA", "$pbkdf2-sha256$i=10,l=32$!!!$AAAA", "$2a$10$short",
	} {
		err := VerifySecret(enc, "secret")
		if err == nil {
			t.Errorf("%q: verified", enc)
		}
	}
	if err := VerifySecret("", "secret"); !errors.Is(err, ErrSecretMismatch) {
		t.Errorf("empty hash: %v", err)
	}
}

func TestHasherOptions(t *testing.T) {
	for _, o := range []HasherOptions{
		{Algorithm: "md5"}, {PBKDF2Iterations: -1}, {BCryptCost: 2}, {BCryptCost: 40},
	} {
		if _, err := NewHasher(o); err == nil {
			t.Errorf("%+v: want error", o)
		}
	}
	bc, _ := NewHasher(HasherOptions{Algorithm: HashBCrypt, BCryptCost: 4})
	if _, err := bc.Hash(strings.Repeat("a", 73)); err == nil {
		t.Error("bcrypt must refuse secrets longer than 72 bytes")
	}
}

func TestGenerateSecret(t *testing.T) {
	a, _ := GenerateSecret()
	b, _ := GenerateSecret()
	if len(a) < 26 || a == b || strings.ContainsAny(a, "+/=") {
		t.Fatalf("bad secrets %q %q", a, b)
	}
}
