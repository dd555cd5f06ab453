package jaeger_test

import (
	"fmt"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
)

func ExampleUILink() {
	fmt.Println(jaeger.UILink("http://localhost:16686/", "4BF92F3577B34DA6A3CE929D0E0E4736"))
	// Output: http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736
}
