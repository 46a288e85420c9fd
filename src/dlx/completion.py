"""Shell completion for bash and zsh: `eval "$(dlx --completion bash)"` (or zsh), e.g. in
~/.bashrc or ~/.zshrc. On TAB the script runs `dlx --complete <shell>` with the line in
COMP_LINE/COMP_POINT; dlx/complete.py works out the candidates. Hydra's own flag lands here
too: `dlx train -sc install=bash` prints the same script (Hydra's would call `dlx -sc
query=bash`, which no command answered), `-sc query=bash` answers Hydra's way (whole words).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

BASH = r"""# dlx completion for bash: eval "$(dlx --completion bash)" (e.g. in ~/.bashrc)
_dlx_complete() {
    local IFS=$'\n' noglob=$(shopt -po noglob)
    set -f  # a candidate like [csv,tensorboard is a word, not a pattern
    COMPREPLY=($(COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \
        COMP_WORDBREAKS="$COMP_WORDBREAKS" "${COMP_WORDS[0]}" --complete bash 2>/dev/null))
    eval "$noglob"
    # group=, key., a folder/ and an open [list go on: no space after them
    local c=${COMPREPLY[0]}
    if [[ ${#COMPREPLY[@]} -eq 1 && ( $c == *[=./] || ( $c == *\[* && $c != *\] ) ) ]]; then
        compopt -o nospace 2>/dev/null
    fi
}
complete -o default -F _dlx_complete dlx
"""

ZSH = r"""# dlx completion for zsh: eval "$(dlx --completion zsh)" (e.g. in ~/.zshrc)
_dlx() {
    local line="${(j: :)${(@)words[1,CURRENT-1]}} ${PREFIX}"
    local -a found bare spaced
    found=("${(@f)$(COMP_LINE="$line" COMP_POINT=${#line} ${words[1]} --complete zsh 2>/dev/null)}")
    found=(${found:#})
    [[ $PREFIX == *=* ]] && compset -P '*='  # key= stays; its values are completed
    if (( ${#found} == 0 )); then
        _files
        return
    fi
    local c
    for c in "${found[@]}"; do  # group=, key., a folder/ and an open [list go on
        if [[ $c == *[=./] || ( $c == *\[* && $c != *\] ) ]]; then bare+=("$c")
        else spaced+=("$c"); fi
    done
    (( ${#bare} )) && compadd -Q -S '' -- "${bare[@]}"
    (( ${#spaced} )) && compadd -Q -- "${spaced[@]}"
}
(( $+functions[compdef] )) || { autoload -Uz compinit && compinit }
compdef _dlx dlx
"""
SCRIPTS = {"bash": BASH, "zsh": ZSH}


def main(argv: list[str], commands: Iterable[str]) -> None:
    """`dlx --completion SHELL`, `dlx --complete SHELL`, and Hydra's `-sc install=SHELL`,
    `-sc query=SHELL`, `-sc uninstall=SHELL` (with or without a command before them)."""
    from dlx.core.errors import ConfigError, reports_errors

    @reports_errors
    def run() -> None:
        if argv[0] in ("--completion", "--complete"):
            action = "install" if argv[0] == "--completion" else "query"
            shell = argv[1] if len(argv) > 1 else "bash"
        else:
            flag = next(i for i, a in enumerate(argv) if a in ("-sc", "--shell-completion"))
            action, _, shell = (argv[flag + 1] if flag + 1 < len(argv) else "").partition("=")
            shell = shell or "bash"
        if shell not in SCRIPTS or action not in ("install", "query", "uninstall"):
            raise ConfigError(
                f'no completion for {" ".join(argv)!r}; use: eval "$(dlx --completion bash)" '
                "(or zsh)"
            )
        if action == "install":
            sys.stdout.write(SCRIPTS[shell])
        elif action == "uninstall":
            sys.stdout.write("complete -r dlx\n" if shell == "bash" else "compdef -d dlx\n")
        else:  # Hydra's query wants whole words; ours, what bash keeps of them
            from dlx.complete import answer

            sys.stdout.write(answer(shell, commands, trim=argv[0] == "--complete"))

    run()
