# The two commands: `make demo` (the main job) and `make test` (every test).
.PHONY: demo test bench build bootstrap server

demo:
	BROWSER=$(BROWSER) ./scripts/demo.sh

test:
	./scripts/test.sh

bench:
	./scripts/bench.sh

build:
	./scripts/bootstrap.sh && ./scripts/build-pkg.sh

bootstrap:
	./scripts/bootstrap.sh

# The local server on fixed ports: API 8787, control 8788 (INHOUSE_PORT / INHOUSE_CONTROL_PORT
# change them); more flags in SERVER_ARGS, e.g. make server SERVER_ARGS='--db events.sqlite'.
# It prints the SDK baseUrl and the event viewer's URL (http://127.0.0.1:8788/, open it in a browser).
server:
	cargo run --release -p inhouse-server -- --port $${INHOUSE_PORT:-8787} --control-port $${INHOUSE_CONTROL_PORT:-8788} --token demo_token_id:demo_token_secret:plegabhjiddkllfafkfabfigjeelipcj $(SERVER_ARGS)
