package client

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// dnAttributeOIDs are the attribute type names of RFC 4514 §3 and the
// common ones of RFC 4519, by OID.
var dnAttributeOIDs = map[string]string{
	"CN": "2.5.4.3", "SERIALNUMBER": "2.5.4.5", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8",
	"STREET": "2.5.4.9", "O": "2.5.4.10", "OU": "2.5.4.11", "TITLE": "2.5.4.12", "POSTALCODE": "2.5.4.17",
	"GIVENNAME": "2.5.4.42", "SN": "2.5.4.4", "DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
	"EMAILADDRESS": "1.2.840.113549.1.9.1", "E": "1.2.840.113549.1.9.1",
}

// dn is a distinguished name in comparable form: its RDNs in RFC 4514
// string order (the last of the ASN.1 sequence first), each a sorted list
// of "oid=value" with the value folded as caseIgnoreMatch folds it (RFC
// 4517 §4.2.11: case and insignificant spaces ignored).
type dn [][]string

func (d dn) equal(o dn) bool {
	return slices.EqualFunc(d, o, func(a, b []string) bool { return slices.Equal(a, b) })
}

func foldValue(v string) string { return strings.ToLower(strings.Join(strings.Fields(v), " ")) }

// parseDN reads an RFC 4514 string (tls_client_auth_subject_dn, RFC 8705
// §2.1.2) with its escapes: "\" before a special character or two hex
// digits, and "#" hex-encoded BER values (hexValue).
func parseDN(s string) (dn, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	var out dn
	var rdn []string
	i := 0
	for {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, errors.New("an attribute has no '='")
		}
		typ := strings.ToUpper(strings.TrimSpace(s[i : i+eq]))
		oid, ok := dnAttributeOIDs[typ]
		if !ok {
			if _, err := parseOID(typ); err != nil {
				return nil, fmt.Errorf("unknown attribute type %q", typ)
			}
			oid = typ
		}
		i += eq + 1
		var val strings.Builder
		hexForm := i < len(s) && s[i] == '#'
		for i < len(s) && s[i] != ',' && s[i] != '+' {
			c := s[i]
			if c != '\\' {
				val.WriteByte(c)
				i++
				continue
			}
			if i+1 >= len(s) {
				return nil, errors.New("a trailing '\\'")
			}
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				b, _ := hex.DecodeString(s[i+1 : i+3])
				val.Write(b)
				i += 3
				continue
			}
			val.WriteByte(s[i+1])
			i += 2
		}
		v := val.String()
		if hexForm {
			v = hexValue(strings.TrimSpace(v))
		} else {
			v = foldValue(v)
		}
		if v == "" {
			return nil, fmt.Errorf("the attribute %s has an empty value", typ)
		}
		rdn = append(rdn, oid+"="+v)
		if i >= len(s) || s[i] == ',' {
			slices.Sort(rdn)
			out = append(out, rdn)
			rdn = nil
		}
		if i >= len(s) {
			return out, nil
		}
		i++
		if i >= len(s) {
			return nil, errors.New("a trailing separator")
		}
	}
}

// hexValue reads RFC 4514 §2.4's "#" form: BER of a string type is
// compared as that string (Go writes attribute types it has no name for
// this way), anything else as its hex.
func hexValue(v string) string {
	der, err := hex.DecodeString(v[1:])
	if err == nil {
		var str string
		if rest, err := asn1.Unmarshal(der, &str); err == nil && len(rest) == 0 {
			return foldValue(str)
		}
	}
	return strings.ToLower(v)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for part := range strings.SplitSeq(s, ".") {
		n := 0
		if part == "" || len(part) > 9 {
			return nil, errors.New("not an OID")
		}
		for _, c := range part {
			if c < '0' || c > '9' {
				return nil, errors.New("not an OID")
			}
			n = n*10 + int(c-'0')
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, errors.New("not an OID")
	}
	return oid, nil
}

// certDN is the comparable form of a certificate's subject. Values that
// are not strings are compared as the hex of their DER encoding, as RFC
// 4514 §2.4 writes them.
func certDN(name pkix.RDNSequence) dn {
	out := make(dn, 0, len(name))
	for i := len(name) - 1; i >= 0; i-- {
		var rdn []string
		for _, atv := range name[i] {
			var v string
			if s, ok := atv.Value.(string); ok {
				v = foldValue(s)
			} else if der, err := asn1.Marshal(atv.Value); err == nil {
				v = "#" + hex.EncodeToString(der)
			}
			rdn = append(rdn, atv.Type.String()+"="+v)
		}
		slices.Sort(rdn)
		out = append(out, rdn)
	}
	return out
}
