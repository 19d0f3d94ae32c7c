"""Running claimledger as real processes, for the test suite and the benchmarks alike:
a redis-server and the services as child processes configured only by CLAIMLEDGER_*
variables (cluster), a load generator and counters that read the database (load), and
literal report builders (factories). The benchmarks import it so that they run without
the tests/ tree."""
