package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// User is one demo account of the users file.
type User struct {
	Username       string `json:"username"`
	PasswordBcrypt string `json:"password_bcrypt"`
	Subject        string `json:"subject"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	EmailVerified  bool   `json:"email_verified"`
}

// Users is the demo user directory, by username and by subject.
type Users struct {
	byName    map[string]*User
	bySubject map[string]*User
}

// dummyHash is compared against when the username is unknown, so that an
// unknown user takes as long to reject as a wrong password.
var dummyHash = []byte("$2a$10$H.1l/RyvX/ctmqLAMUEgOuZBtfh/599sb0fgh0DYzKFqg8SsQ.h3e")

// LoadUsers reads a users file: {"users":[{username, password_bcrypt,
// subject, name, email, email_verified}]}.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	u, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return u, nil
}

// ParseUsers decodes a users document strictly.
func ParseUsers(doc []byte) (*Users, error) {
	var f struct {
		Users []User `json:"users"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Users) == 0 {
		return nil, errors.New("no users")
	}
	us := &Users{byName: map[string]*User{}, bySubject: map[string]*User{}}
	for i := range f.Users {
		u := &f.Users[i]
		switch {
		case strings.TrimSpace(u.Username) == "":
			return nil, fmt.Errorf("users[%d]: username is empty", i)
		case u.Subject == "":
			return nil, fmt.Errorf("users[%d] (%s): subject is empty", i, u.Username)
		case !strings.HasPrefix(u.PasswordBcrypt, "$2"):
			return nil, fmt.Errorf("users[%d] (%s): password_bcrypt is not a bcrypt hash", i, u.Username)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordBcrypt)); err != nil {
			return nil, fmt.Errorf("users[%d] (%s): password_bcrypt: %v", i, u.Username, err)
		}
		key := strings.ToLower(u.Username)
		if us.byName[key] != nil {
			return nil, fmt.Errorf("users[%d]: duplicate username %q", i, u.Username)
		}
		if us.bySubject[u.Subject] != nil {
			return nil, fmt.Errorf("users[%d]: duplicate subject %q", i, u.Subject)
		}
		us.byName[key], us.bySubject[u.Subject] = u, u
	}
	return us, nil
}

// Authenticate returns the user whose username (case-insensitive) and
// password match, or nil. It runs one bcrypt comparison either way.
func (us *Users) Authenticate(username, password string) *User {
	u := us.byName[strings.ToLower(strings.TrimSpace(username))]
	if u == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordBcrypt), []byte(password)) != nil {
		return nil
	}
	return u
}

// BySubject returns the user with that subject, or nil.
func (us *Users) BySubject(sub string) *User { return us.bySubject[sub] }

// Claims returns the ID token claims the granted scopes release
// (OpenID Connect Core §5.4): email → email, email_verified; profile →
// name, preferred_username.
func (u *User) Claims(granted []string) map[string]any {
	c := map[string]any{}
	if u == nil {
		return c
	}
	for _, s := range granted {
		switch s {
		case "email":
			if u.Email != "" {
				c["email"] = u.Email
				c["email_verified"] = u.EmailVerified
			}
		case "profile":
			if u.Name != "" {
				c["name"] = u.Name
			}
			c["preferred_username"] = u.Username
		}
	}
	return c
}
