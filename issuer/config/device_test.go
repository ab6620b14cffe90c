package config

import (
	"strings"
	"testing"
	"time"
)

// The device authorization settings: presets, custom shapes and what is
// refused (RFC 8628 §5.1: enough entropy for the brute-force limits).
func TestDeviceAuthorizationValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		d        DeviceAuthorization
		length   int
		alphabet string
		err      string
	}{
		{"default", Default().OAuth2.DeviceAuthorization, 8, UserCodeConsonants, ""},
		{"medium", DeviceAuthorization{TokenPollingInterval: 5 * time.Second, UserCode: UserCode{EntropyPreset: "medium"}}, 7, UserCodeConsonants, ""},
		{"low", DeviceAuthorization{TokenPollingInterval: 5 * time.Second, UserCode: UserCode{EntropyPreset: "low"}}, 9, UserCodeDigits, ""},
		{"custom, lower case", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "high", Length: 10, CharacterSet: "abcdefgh"}}, 10, "ABCDEFGH", ""},
		{"unknown preset", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "extreme"}}, 0, "", "entropy_preset"},
		{"interval not whole seconds", DeviceAuthorization{TokenPollingInterval: 1500 * time.Millisecond, UserCode: UserCode{EntropyPreset: "high"}}, 0, "", "token_polling_interval"},
		{"no interval", DeviceAuthorization{UserCode: UserCode{EntropyPreset: "high"}}, 0, "", "token_polling_interval"},
		{"separator", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "high", CharacterSet: "ABC-DEF"}}, 0, "", "letters and digits"},
		{"same letter twice", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "high", CharacterSet: "ABCDa"}}, 0, "", "twice"},
		{"too short", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "high", Length: 4}}, 0, "", "between"},
		{"too little entropy", DeviceAuthorization{TokenPollingInterval: time.Second, UserCode: UserCode{EntropyPreset: "high", Length: 6, CharacterSet: "0123"}}, 0, "", "bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error about %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, a := tc.d.UserCode.UserCodeShape(); n != tc.length || a != tc.alphabet {
				t.Fatalf("shape %d %q, want %d %q", n, a, tc.length, tc.alphabet)
			}
		})
	}
}
