package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

const (
	secretOld = "old-secret-0123456789"
	secretNew = "new-secret-9876543210"
	secretX   = "unrelated-secret-xyz"
)

func mustKeyring(t testing.TB, system ...string) *Keyring {
	t.Helper()
	k, err := NewKeyring(system)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func TestNewKeyringRejects(t *testing.T) {
	tests := []struct {
		name    string
		system  []string
		wantErr string // substring; "" means success
	}{
		{"nil list", nil, "at least one system secret"},
		{"empty list", []string{}, "at least one system secret"},
		{"one short", []string{"short"}, "index 0"},
		{"empty secret", []string{""}, "index 0"},
		{"15 bytes", []string{strings.Repeat("a", 15)}, "index 0"},
		{"second short", []string{secretNew, "tooshort-secret"}, "index 1"},
		{"16 bytes", []string{strings.Repeat("a", 16)}, ""},
		{"two", []string{secretNew, secretOld}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKeyring(tt.system)
			if tt.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("NewKeyring: %v", err)
				}
				if k.Len() != len(tt.system) {
					t.Fatalf("Len = %d", k.Len())
				}
				return
			}
			if err == nil {
				t.Fatal("NewKeyring accepted invalid secrets")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
			for _, s := range tt.system {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestKeyringNeverPrintsSecrets(t *testing.T) {
	k := mustKeyring(t, secretNew, secretOld)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, secretNew) || strings.Contains(s, secretOld) {
			t.Fatalf("formatted keyring reveals a secret: %s", s)
		}
	}
}

func TestEncryptDecrypt(t *testing.T) {
	plain := []byte(`{"kty":"EC","d":"private"}`)
	aad := []byte("hydra.openid.id-token/kid-1")

	old := mustKeyring(t, secretOld)
	oldCT, err := old.Encrypt("jwk", plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustKeyring(t, secretNew, secretOld)
	newCT, err := rotated.Encrypt("jwk", plain, aad)
	if err != nil {
		t.Fatal(err)
	}

	tamper := func(ct []byte, i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}

	tests := []struct {
		name    string
		ring    *Keyring
		purpose string
		ct      []byte
		aad     []byte
		ok      bool
	}{
		{"round trip", old, "jwk", oldCT, aad, true},
		{"rotated ring decrypts its own", rotated, "jwk", newCT, aad, true},
		{"rotated ring decrypts old secret's ciphertext", rotated, "jwk", oldCT, aad, true},
		{"old-only ring cannot decrypt new secret's ciphertext", old, "jwk", newCT, aad, false},
		{"secret removed", mustKeyring(t, secretNew), "jwk", oldCT, aad, false},
		{"unrelated secret", mustKeyring(t, secretX), "jwk", oldCT, aad, false},
		{"wrong aad (swapped row)", old, "jwk", oldCT, []byte("hydra.openid.id-token/kid-2"), false},
		{"nil aad", old, "jwk", oldCT, nil, false},
		{"wrong purpose", old, "cookie", oldCT, aad, false},
		{"tampered version", old, "jwk", tamper(oldCT, 0), aad, false},
		{"tampered key id", old, "jwk", tamper(oldCT, 2), aad, false},
		{"tampered nonce", old, "jwk", tamper(oldCT, headerLen+1), aad, false},
		{"tampered body", old, "jwk", tamper(oldCT, headerLen+nonceLen+1), aad, false},
		{"tampered tag", old, "jwk", tamper(oldCT, len(oldCT)-1), aad, false},
		{"truncated", old, "jwk", oldCT[:len(oldCT)-1], aad, false},
		{"too short", old, "jwk", oldCT[:overheadLen-1], aad, false},
		{"empty", old, "jwk", nil, aad, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Decrypt(tt.purpose, tt.ct, tt.aad)
			if tt.ok {
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("Decrypt = %q", got)
				}
				return
			}
			if !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("Decrypt = %q, %v; want ErrDecrypt", got, err)
			}
		})
	}
}

func TestEncryptFormat(t *testing.T) {
	k := mustKeyring(t, secretNew, secretOld)
	plain := []byte("private key material")
	a, _ := k.Encrypt("jwk", plain, nil)
	b, _ := k.Encrypt("jwk", plain, nil)
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one plaintext are identical: nonce not random")
	}
	if len(a) != overheadLen+len(plain) {
		t.Fatalf("ciphertext length %d, want %d", len(a), overheadLen+len(plain))
	}
	if a[0] != version1 || !bytes.Equal(a[1:headerLen], b[1:headerLen]) {
		t.Fatal("version byte or key id not written")
	}
	if bytes.Contains(a, plain) {
		t.Fatal("ciphertext contains the plaintext")
	}
	// The key id names the first secret: a ring with only that secret
	// writes the same id, a ring with another first secret a different one.
	c, _ := mustKeyring(t, secretNew).Encrypt("jwk", plain, nil)
	d, _ := mustKeyring(t, secretOld).Encrypt("jwk", plain, nil)
	if !bytes.Equal(a[1:headerLen], c[1:headerLen]) || bytes.Equal(a[1:headerLen], d[1:headerLen]) {
		t.Fatal("key id does not identify the first secret")
	}
}

func TestMAC(t *testing.T) {
	data := []byte("token-payload")
	old := mustKeyring(t, secretOld)
	rotated := mustKeyring(t, secretNew, secretOld)
	oldMAC := old.MAC("token", data)
	newMAC := rotated.MAC("token", data)

	if len(newMAC) != 32 || bytes.Equal(oldMAC, newMAC) {
		t.Fatal("MAC must be 32 bytes and depend on the first secret")
	}
	macs := rotated.MACs("token", data)
	if len(macs) != 2 || !bytes.Equal(macs[0], newMAC) || !bytes.Equal(macs[1], oldMAC) {
		t.Fatal("MACs must list one MAC per secret, first first")
	}

	tests := []struct {
		name    string
		ring    *Keyring
		purpose string
		data    []byte
		mac     []byte
		want    bool
	}{
		{"own MAC", old, "token", data, oldMAC, true},
		{"rotated ring accepts old MAC", rotated, "token", data, oldMAC, true},
		{"rotated ring accepts new MAC", rotated, "token", data, newMAC, true},
		{"old ring rejects new MAC", old, "token", data, newMAC, false},
		{"other purpose", rotated, "cookie", data, newMAC, false},
		{"other data", rotated, "token", []byte("token-payloae"), newMAC, false},
		{"truncated MAC", rotated, "token", data, newMAC[:31], false},
		{"empty MAC", rotated, "token", data, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ring.VerifyMAC(tt.purpose, tt.data, tt.mac); got != tt.want {
				t.Fatalf("VerifyMAC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyDerivation(t *testing.T) {
	k := mustKeyring(t, secretNew, secretOld)
	a, b := k.Key("cookie"), k.Key("csrf")
	if len(a) != KeySize || bytes.Equal(a, b) {
		t.Fatal("keys must be 32 bytes and differ per purpose")
	}
	if !bytes.Equal(a, mustKeyring(t, secretNew).Key("cookie")) {
		t.Fatal("Key must derive from the first secret only, deterministically")
	}
	if bytes.Contains(a, []byte(secretNew)) || bytes.Equal(a, k.MAC("cookie", nil)) {
		t.Fatal("raw key must not be the secret or another derived value")
	}
	ks := k.Keys("cookie")
	if len(ks) != 2 || !bytes.Equal(ks[0], a) || !bytes.Equal(ks[1], mustKeyring(t, secretOld).Key("cookie")) {
		t.Fatal("Keys must return one key per secret, first first")
	}
	// Length-prefixed info: a use and a purpose that embeds the
	// separator must not collide.
	if bytes.Equal(k.derive(0, "key", "a:b"), k.derive(0, "key:a", "b")) {
		t.Fatal("derivation info is ambiguous")
	}
}

func TestConcurrentUse(t *testing.T) {
	k := mustKeyring(t, secretNew, secretOld)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			purpose := fmt.Sprintf("p%d", i%4)
			ct, err := k.Encrypt(purpose, []byte("x"), nil)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := k.Decrypt(purpose, ct, nil); err != nil {
				t.Error(err)
			}
			if !k.VerifyMAC(purpose, []byte("x"), k.MAC(purpose, []byte("x"))) {
				t.Error("MAC mismatch")
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDecrypt(b *testing.B) {
	k := mustKeyring(b, secretNew, secretOld)
	ct, _ := mustKeyring(b, secretOld).Encrypt("jwk", make([]byte, 1700), []byte("set/kid"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decrypt("jwk", ct, []byte("set/kid")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMAC(b *testing.B) {
	k := mustKeyring(b, secretNew, secretOld)
	sum := k.MAC("token", []byte("some-token-value"))
	b.ReportAllocs()
	for b.Loop() {
		if !k.VerifyMAC("token", []byte("some-token-value"), sum) {
			b.Fatal("mismatch")
		}
	}
}
