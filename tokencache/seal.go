package tokencache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// sealer encrypts session records with AES-256-GCM, so that neither a
// cookie nor a Redis dump reveals a token. The associated data binds a
// sealed record to where it is kept (a cookie name, a Redis key).
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	if len(key) != 32 {
		return sealer{}, errors.New("sealing key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	return sealer{aead}, err
}

// seal returns nonce | ciphertext of (expiry | authorization NUL identity).
func (s sealer) seal(sess Session, ad []byte) []byte {
	plain := make([]byte, 8, 8+len(sess.Authorization)+1+len(sess.Identity))
	binary.BigEndian.PutUint64(plain, uint64(sess.Expires.UnixNano()))
	plain = append(plain, joinRecord(sess)...)
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(out)
	return s.aead.Seal(out, out, plain, ad)
}

// open reverses seal; ok is false for anything forged, truncated or sealed
// for another place.
func (s sealer) open(sealed, ad []byte) (Session, bool) {
	n := s.aead.NonceSize()
	if len(sealed) < n+8+s.aead.Overhead() {
		return Session{}, false
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return Session{}, false
	}
	sess := splitRecord(string(plain[8:]))
	sess.Expires = time.Unix(0, int64(binary.BigEndian.Uint64(plain)))
	return sess, true
}

// joinRecord puts a session's strings in one: the authorization, NUL, the
// identity. A token never holds a NUL (RFC 6749 VSCHAR), so the first NUL
// is the separator; one string is also one allocation per stored session.
func joinRecord(s Session) string {
	if s.Identity == "" {
		return s.Authorization
	}
	return s.Authorization + "\x00" + s.Identity
}

// splitRecord reverses joinRecord without copying.
func splitRecord(record string) Session {
	auth, identity, _ := strings.Cut(record, "\x00")
	return Session{Authorization: auth, Identity: identity}
}
