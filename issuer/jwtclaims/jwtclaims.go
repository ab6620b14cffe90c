// Package jwtclaims decodes the registered claims of RFC 7519 §4.1 the way
// assertion checks need them: aud as a string or an array, and dates as
// bounded NumericDates. Client assertions (private_key_jwt, RFC 7523 §2.2)
// and authorization grants (RFC 7523 §2.1) share it.
package jwtclaims

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// Registered are the registered claims an assertion is checked on.
type Registered struct {
	Iss string       `json:"iss"`
	Sub string       `json:"sub"`
	Aud Audience     `json:"aud"`
	Exp *NumericDate `json:"exp"`
	Nbf *NumericDate `json:"nbf"`
	Iat *NumericDate `json:"iat"`
	Jti string       `json:"jti"`
}

// Audience is RFC 7519 §4.1.3's aud: a string or an array of strings.
type Audience []string

// UnmarshalJSON accepts both forms.
func (a *Audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// NumericDate is RFC 7519 §2's NumericDate (seconds, possibly fractional).
type NumericDate struct{ t time.Time }

// ErrDateRange is returned for a NumericDate that is not a finite number
// between 0 and 10^11 (year 5138).
var ErrDateRange = errors.New("numeric date out of range")

// UnmarshalJSON decodes a JSON number of seconds.
func (n *NumericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return ErrDateRange
	}
	sec, frac := math.Modf(f)
	n.t = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// Time is the date as a time.Time.
func (n *NumericDate) Time() time.Time { return n.t }
