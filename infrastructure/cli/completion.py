"""``partner-ledger completion bash``: a completion script generated from the parser itself,
so it always offers exactly the commands and options ``--help`` lists."""

from __future__ import annotations

import argparse

TEMPLATE = """\
# bash completion for partner-ledger: eval "$(partner-ledger completion bash)"
_partner_ledger() {
    local cur words
    cur="${COMP_WORDS[COMP_CWORD]}"
    local command="" action="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -*) ;;
            *) if [[ -z "$command" ]]; then command="${COMP_WORDS[i]}"
               elif [[ "$command" == quarantine && -z "$action" ]]; then action="${COMP_WORDS[i]}"
               fi ;;
        esac
    done
    case "$command $action" in
%(cases)s
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _partner_ledger partner-ledger
"""


def completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    cases = [_case(" ", _words(parser))]
    for name, sub in _subcommands(parser).items():
        nested = _subcommands(sub)
        cases.append(_case(f"{name} ", _words(sub)))
        for action, leaf in nested.items():
            cases.append(_case(f"{name} {action}", _words(leaf)))
    print(TEMPLATE % {"cases": "\n".join(cases)}, end="")
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _words(parser: argparse.ArgumentParser) -> list[str]:
    words = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    words += list(_subcommands(parser))
    for action in parser._actions:
        if (
            not action.option_strings
            and action.choices
            and not isinstance(action, argparse._SubParsersAction)
        ):
            words += [str(choice) for choice in action.choices]
    return words


def _case(pattern: str, words: list[str]) -> str:
    return f'        "{pattern}") words="{" ".join(words)}" ;;'
