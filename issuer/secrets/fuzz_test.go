package secrets

import (
	"bytes"
	"testing"
)

// FuzzDecrypt feeds arbitrary bytes (as a database row could hold after
// corruption or tampering) to Decrypt: it must never panic, and must only
// succeed on the genuine ciphertext.
func FuzzDecrypt(f *testing.F) {
	k, err := NewKeyring([]string{secretNew, secretOld})
	if err != nil {
		f.Fatal(err)
	}
	old, _ := NewKeyring([]string{secretOld})
	plain := []byte("secret payload")
	aad := []byte("set/kid")
	genuine, _ := k.Encrypt("jwk", plain, aad)
	oldCT, _ := old.Encrypt("jwk", plain, aad)
	f.Add(genuine, aad)
	f.Add(oldCT, aad)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{version1}, aad)
	f.Add(bytes.Repeat([]byte{version1}, overheadLen), aad)
	f.Add(genuine[:overheadLen], aad)
	f.Fuzz(func(t *testing.T, ct, ad []byte) {
		pt, err := k.Decrypt("jwk", ct, ad)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		if !bytes.Equal(pt, plain) || !bytes.Equal(ad, aad) {
			t.Fatalf("Decrypt accepted a forged ciphertext: %x", ct)
		}
	})
}
