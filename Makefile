# smartsync: offline-first sync inside PostgreSQL (PGXS build)

EXTENSION = smartsync
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" smartsync.control)

MODULE_big = smartsync
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

# The install script is assembled from one SQL file per concern (src/sql/NN_*.sql).
SQL_PARTS = $(sort $(wildcard src/sql/*.sql))
DATA_built = build/$(EXTENSION)--$(EXTVERSION).sql
# upgrade/: the install script of every earlier release (smartsync--A.sql) and
# the upgrade scripts between releases (smartsync--A--B.sql), from 0.2.0 on
DATA = $(filter-out $(DATA_built),$(wildcard upgrade/$(EXTENSION)--*.sql))

# pg_regress: every sql/*.sql with its expected/*.out
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.

# isolation specs: test/isolation/specs/*.spec with test/isolation/expected/*.out
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation

PG_CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
EXTRA_CLEAN = build results output_iso regression.diffs regression.out test/isolation/output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(SQL_PARTS) smartsync.control
	@mkdir -p build
	cat $(SQL_PARTS) > $@

all: $(DATA_built)

# pgTAP suites through pg_prove, in their own database
PGTAP_DB ?= smartsync_tap
.PHONY: pgtap test demo bench tap
pgtap:
	dropdb --if-exists $(PGTAP_DB)
	createdb $(PGTAP_DB)
	psql -X -q -v ON_ERROR_STOP=1 -d $(PGTAP_DB) -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION smartsync'
	pg_prove -d $(PGTAP_DB) --ext .sql -r test/pgtap

# every suite against the cluster in PG* (run inside pg_virtualenv: see test/run.sh)
test: installcheck pgtap corpus sim

# offline clients against the server, checked for convergence (test/sim/sim.c, libpq);
# the soak form, with autovacuum as aggressive as it gets: bash test/sim/soak.sh 600
SIM_ARGS ?=
.PHONY: sim
sim:
	@$(MAKE) -s -C test/sim PG_CONFIG=$(PG_CONFIG) run SIM_ARGS="$(SIM_ARGS)"

bench:
	bash bench/run.sh

# TAP tests (test/tap/*.pl) with PostgreSQL's Perl framework: hot standby, crash
# recovery.  They make their own clusters (no pg_virtualenv needed).
tap:
	bash test/tap/run.sh

# the bad-payload corpus (test/corpus/*.jsonl) through test/corpus/run.sql, in its own database
CORPUS_DB ?= smartsync_corpus
.PHONY: corpus
corpus:
	dropdb --if-exists $(CORPUS_DB)
	createdb $(CORPUS_DB)
	psql -X -q -v ON_ERROR_STOP=1 -d $(CORPUS_DB) -f test/corpus/run.sql
	dropdb $(CORPUS_DB)

# smartsync on Citus (test/citus.sh): a coordinator and two workers from a
# private installation; prints why it is skipped when citus is not installed
.PHONY: citus-check
citus-check:
	bash test/citus.sh

# the whole suite and the TAP tests on an AddressSanitizer + UndefinedBehaviorSanitizer
# build of smartsync in a private PostgreSQL installation (test/sanitize.sh)
.PHONY: sanitize
sanitize:
	bash test/sanitize.sh
