module github.com/skeinhq/skein/bench

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/rs/zerolog v1.35.1
	github.com/skeinhq/skein v0.0.0
	go.uber.org/zap v1.28.0
)

require (
	github.com/jmespath-community/go-jmespath v1.1.1 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/exp v0.0.0-20230314191032-db074128a8ec // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/skeinhq/skein => ../
