"""Run every benchmark and print one table of medians and ratios to their floors."""

from bench import accounts, actions, imports, management, migration, sandbox, tokens


def main() -> None:
    """Print the table."""
    print(f"{'benchmark':<58} {'median ms':>10} {'× floor':>8}")
    for module in (tokens, accounts, sandbox, actions, migration, management, imports):
        for name, seconds, floor in module.main():
            print(f"{name:<58} {seconds * 1000:>10.2f} {seconds / floor:>8.2f}")


if __name__ == "__main__":
    main()
