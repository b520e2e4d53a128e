# The two commands: `make demo` (the main job) and `make test` (every test).
.PHONY: demo test bench build bootstrap server

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

bench:
	./scripts/bench.sh

build:
	./scripts/bootstrap.sh && ./scripts/build-pkg.sh

bootstrap:
	./scripts/bootstrap.sh

server:
	cargo run --release -p inhouse-server -- --token demo_token_id:demo_token_secret:plegabhjiddkllfafkfabfigjeelipcj
