"""Run every benchmark and print one table."""

from bench import tokens

if __name__ == "__main__":
    tokens.main()
