package kms_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoalstream/shoal/internal/kms"
)

// Example opens a keyring with one key of the customer's own, wraps a data
// key as the server does when it starts an encrypted shard log, unwraps it,
// rotates the key through the keys file, and disables the default key.
func Example() {
	dataDir, err := os.MkdirTemp("", "shoal-kms-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	keysFile := filepath.Join(dataDir, "keys.json")
	writeKeys := func(materials ...string) {
		vs := ""
		for i, m := range materials {
			if i > 0 {
				vs += ", "
			}
			vs += `{"material": "` + m + `"}`
		}
		_ = os.WriteFile(keysFile, []byte(`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
		  "aliases": ["alias/orders"], "versions": [`+vs+`]}]}`), 0o600)
	}
	// Material: openssl rand -base64 32.
	writeKeys("bQ9bW0HfNQ2c4m0ZxkYyTt4vJ1Yq6hY2d1Qb8j3lK0A=")

	keys, err := kms.Open(kms.Config{KeysFile: keysFile, Dir: filepath.Join(dataDir, "kms"), Region: "us-east-1", AccountID: "111122223333"})
	if err != nil {
		fmt.Println(err)
		return
	}
	key, err := keys.Resolve("arn:aws:kms:us-east-1:111122223333:alias/orders")
	fmt.Println(key.ARN, key.State, err)

	dek, wrapped, _ := keys.GenerateDataKey("alias/orders")
	info, _ := kms.ParseWrapped(wrapped)
	fmt.Println(len(dek), len(wrapped), info.Version)

	// Rotation: a second version in the file, then a reload (SIGHUP).
	writeKeys("bQ9bW0HfNQ2c4m0ZxkYyTt4vJ1Yq6hY2d1Qb8j3lK0A=", "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	fmt.Println(keys.Reload())
	_, wrapped2, _ := keys.GenerateDataKey(key.ID)
	info, _ = kms.ParseWrapped(wrapped2)
	again, err := keys.Unwrap(wrapped)
	fmt.Println(info.Version, bytes.Equal(again, dek), err)

	// The default key answers to alias/aws/kinesis; disabled, it neither
	// wraps nor unwraps.
	_, wrapped3, _ := keys.GenerateDataKey(kms.DefaultAlias)
	_ = keys.SetEnabled(kms.DefaultAlias, false)
	_, err = keys.Unwrap(wrapped3)
	fmt.Println(errors.Is(err, kms.ErrDisabled))
	fmt.Println(errors.Is(keys.Rotate("alias/orders"), kms.ErrReadOnly))
	// Output:
	// arn:aws:kms:us-east-1:111122223333:key/6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b Enabled <nil>
	// 32 83 1
	// <nil>
	// 2 true <nil>
	// true
	// true
}
