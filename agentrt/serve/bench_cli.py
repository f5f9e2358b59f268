def add_parser(bench_sub, add_engine_flags) -> None:
    pass
