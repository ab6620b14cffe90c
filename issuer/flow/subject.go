package flow

import (
	"crypto/sha256"
	"fmt"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// idTokenSubject returns the sub of ID tokens for subject at client:
// force_subject_identifier, else the pairwise identifier for pairwise
// clients (OpenID Connect Core §8.1), else subject.
func (h *Handler) idTokenSubject(c *client.Client, subject, forced string) (string, error) {
	if forced != "" {
		return forced, nil
	}
	if c.SubjectType != "pairwise" {
		return subject, nil
	}
	return pairwiseSubject(c, subject, h.opts.PairwiseSalt)
}

// pairwiseSubject is OpenID Connect Core §8.1's example calculation, as
// Hydra does it: sub = hex(SHA-256(sector_identifier || local_account_id
// || salt)), where the sector identifier is the host of
// sector_identifier_uri, or of the only redirect URI.
func pairwiseSubject(c *client.Client, subject, salt string) (string, error) {
	var sector string
	switch {
	case c.SectorIdentifierURI != "":
		u, err := url.Parse(c.SectorIdentifierURI)
		if err != nil {
			return "", err
		}
		sector = u.Host
	case len(c.RedirectURIs) == 1:
		u, err := url.Parse(c.RedirectURIs[0])
		if err != nil {
			return "", err
		}
		sector = u.Host
	default:
		// §8.1: with several redirect URI hosts a sector_identifier_uri
		// is required (client validation enforces it).
		return "", fmt.Errorf("flow: pairwise client %q needs a sector_identifier_uri", c.ID)
	}
	sum := sha256.Sum256([]byte(sector + subject + salt))
	return fmt.Sprintf("%x", sum), nil
}
