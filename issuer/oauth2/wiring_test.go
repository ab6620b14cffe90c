package oauth2

import (
	"github.com/gatehouse-dev/gatehouse/issuer/keys"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
)

// The production dependencies satisfy the interfaces the handler needs.
var (
	_ Signer = (*keys.Manager)(nil)
	_ MACer  = (*secrets.Keyring)(nil)
)
