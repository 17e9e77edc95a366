# Everyday commands; `make help` lists them.

# Compose runs the service as the calling user, so the ./data bind mount stays writable
# (docker-compose.yml reads these; .env may set them too).
export APP_UID ?= $(shell id -u)
export APP_GID ?= $(shell id -g)

.DEFAULT_GOAL := help
.PHONY: help up up-monitoring down up-postgres roll-postgres down-postgres logs test docs-check run bench lint lint-deploy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

up: ## Build and start the service on http://localhost:8000 (Docker Compose)
	mkdir -p data
	docker compose up -d --build

up-monitoring: ## Same, plus Prometheus (localhost:9090) and Grafana (localhost:3000)
	mkdir -p data
	docker compose --profile monitoring up -d --build

down: ## Stop everything and delete its volumes (./data, a bind mount, is kept)
	docker compose --profile monitoring down -v

up-postgres: ## PostgreSQL, two replicas and HAProxy on http://localhost:8080 (POSTGRES_PASSWORD in .env)
	docker compose --profile postgres up -d --build lb

roll-postgres: ## Rebuild, then replace the replicas one at a time; senders see nothing
	docker compose --profile postgres build replica-1
	for n in 1 2; do \
	  docker compose --profile postgres up -d --no-deps --force-recreate --wait replica-$$n && \
	  until curl -fs 'http://127.0.0.1:8404/stats;csv' | grep -q "^replicas,replica$$n,.*,UP,"; do sleep 1; done; \
	done

down-postgres: ## Stop the postgres profile (its database volume is kept)
	docker compose --profile postgres rm -s -f lb replica-1 replica-2 db

logs: ## Follow the service's logs
	docker compose logs -f api

test: ## Run the test suite
	cargo test --locked

docs-check: ## Render /docs in headless Chromium (apt-get install -y chromium; else SKIP)
	python3 tests/browser/check_docs.py

run: ## Run the service locally (reads .env)
	cargo run --release

bench: ## Run the benchmarks
	bench/run

lint: ## Format check, clippy and the deployment files
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	.ci/lint-deploy

lint-deploy: ## Only the deployment files (Dockerfile, compose, k8s, monitoring)
	.ci/lint-deploy
