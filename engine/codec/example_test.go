package codec_test

import (
	"fmt"

	"github.com/sluicehq/sluice/engine/codec"
)

func ExampleGet() {
	doc := []byte(`{"type":"click","user":{"geo":{"country":"FR"}},"items":[{"sku":"a1"},{"sku":"b2"}]}`)
	if !codec.Valid(doc) { // Get assumes a validated document
		return
	}
	country := codec.MustParsePath("user.geo.country") // compile once, reuse per record
	v, _ := codec.Get(doc, country)
	fmt.Println(string(v))
	v, _ = codec.Get(doc, codec.MustParsePath("items.1.sku"))
	fmt.Println(string(v))
	_, err := codec.Get(doc, codec.MustParsePath("user.email"))
	fmt.Println(err)
	// Output:
	// "FR"
	// "b2"
	// codec: path not found
}

func ExampleValid() {
	fmt.Println(codec.Valid([]byte(`{"a":"ok"}`)))
	fmt.Println(codec.Valid([]byte(`{"a":"\q"}`))) // bad escape: rejected
	// Output:
	// true
	// false
}
