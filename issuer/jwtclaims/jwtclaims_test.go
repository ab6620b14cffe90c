package jwtclaims

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRegistered(t *testing.T) {
	for _, tc := range []struct {
		in   string
		aud  []string
		exp  time.Time
		fail bool
	}{
		{`{"aud":"a","exp":1700000000}`, []string{"a"}, time.Unix(1700000000, 0), false},
		{`{"aud":["a","b"],"exp":1700000000.5}`, []string{"a", "b"}, time.Unix(1700000000, 5e8), false},
		{`{"aud":1}`, nil, time.Time{}, true},
		{`{"exp":-1}`, nil, time.Time{}, true},
		{`{"exp":1e300}`, nil, time.Time{}, true},
		{`{"exp":"1700000000"}`, nil, time.Time{}, true},
	} {
		var r Registered
		err := json.Unmarshal([]byte(tc.in), &r)
		if (err != nil) != tc.fail {
			t.Fatalf("%s: err %v", tc.in, err)
		}
		if tc.fail {
			continue
		}
		if len(r.Aud) != len(tc.aud) || r.Exp == nil || !r.Exp.Time().Equal(tc.exp) {
			t.Fatalf("%s: %+v", tc.in, r)
		}
	}
}

func FuzzRegistered(f *testing.F) {
	for _, s := range []string{`{"aud":"a","exp":1}`, `{"aud":["a"],"iat":1.5,"nbf":0}`, `{"exp":NaN}`, `{"aud":[1]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Registered
		_ = json.Unmarshal([]byte(s), &r)
	})
}
