package extauthz

// binding is a token's confirmation claim (cnf, RFC 7800 §3.1), from the
// JWT's claims or the introspection answer (RFC 9449 §6, RFC 8705 §3).
type binding struct {
	jkt string // cnf.jkt: the RFC 7638 thumbprint of the DPoP key
	x5t string // cnf.x5t#S256: the SHA-256 of the client certificate
}

// bindingOf reads cnf; a cnf that is not an object, or a jkt or
// x5t#S256 that is not a string, makes the claims invalid.
func bindingOf(c claimSet) (binding, error) {
	v, ok := c.value("cnf")
	if !ok || v == nil {
		return binding{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return binding{}, errInvalidClaims
	}
	var b binding
	for name, dst := range map[string]*string{"jkt": &b.jkt, "x5t#S256": &b.x5t} {
		switch x := m[name].(type) {
		case nil:
		case string:
			*dst = x
		default:
			return binding{}, errInvalidClaims
		}
	}
	return b, nil
}

// checkBinding enforces the token's binding on this request: a DPoP-bound
// token needs the DPoP scheme and a valid proof made with its key
// (dpop.go), a certificate-bound one the client certificate it names
// (mtls.go). An unbound token sent with the DPoP scheme is refused too
// (see dpopChecker.check). The token's validation may come from the
// cache; the binding is checked on every request.
func (a *Authorizer) checkBinding(r *Request, ru *rule, tok string, dpopScheme bool, id *Identity) *Denial {
	if id.bind.jkt != "" || dpopScheme {
		if d := a.dpop.check(r, ru, tok, dpopScheme, id.bind.jkt, a.now()); d != nil {
			return d
		}
	}
	if id.bind.x5t != "" {
		return a.mtls.check(r, id.bind.x5t)
	}
	return nil
}
