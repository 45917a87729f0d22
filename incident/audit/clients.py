"""Find where source code configures a Stripe client and judge where the key comes from.

A line-level heuristic across the languages Stripe ships SDKs for. It answers two
questions per configuration site: is the key read from the environment or a secrets
manager (good) or written in the code (no-go), and does a missing key fail clearly
at start-up (``os.environ["X"]``, ``ENV.fetch("X")``, an explicit check) or only
later, or silently fall back to a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from incident.audit.model import Status
from incident.detect.rules import KEY_PATTERN, PLACEHOLDER_PATTERN

SOURCE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".rb",
                   ".php", ".go", ".java", ".kt", ".cs", ".scala", ".ex", ".exs")

# Where a client gets its key: an assignment to the SDK's global, or a constructor.
_SITE = re.compile(
    r"(?:\bstripe\.api_key|\bStripe\.api_key|\bStripe\.apiKey|\bstripe\.Key"
    r"|\bStripeConfiguration\.ApiKey)\s*=\s*(?P<assigned>.*)"
    r"|(?:\bStripeClient|\bnew\s+Stripe|require\(\s*['\"]stripe['\"]\s*\)"
    r"|Stripe::setApiKey|\bStripe\.StripeClient)\s*\(\s*(?P<argument>.*)"
)
# Reads that raise at once when the variable is missing.
_STRICT_ENV = re.compile(
    r"os\.environ\[|ENV\.fetch\(\s*['\"][^'\"]+['\"]\s*\)(?!\s*(?:\{|do\b))"
    r"|System\.Env\.fetch_env!|mustGetenv|requireEnv|getRequiredProperty"
)
# Reads that return nothing (None, undefined, "") when the variable is missing.
_LENIENT_ENV = re.compile(
    r"os\.getenv\(|os\.environ\.get\(|process\.env\b|import\.meta\.env\b"
    r"|\bENV\[|ENV\.fetch\(|\bgetenv\(|System\.getenv\(|os\.Getenv\("
    r"|Environment\.GetEnvironmentVariable\(|\$_ENV\[|\$_SERVER\[|\benv\(\s*['\"]"
    r"|Deno\.env\.get\(|System\.get_env\("
)
# A fallback value after the variable name: a second argument, ||, ??, or, a block.
_DEFAULT = re.compile(
    r"(?:getenv|environ\.get|ENV\.fetch|\benv)\(\s*['\"][^'\"]+['\"]\s*,"
    r"|\|\||\?\?|\bor\b|ENV\.fetch\([^)]*\)\s*(?:\{|do\b)"
)
_SECRETS_MANAGER = re.compile(
    r"(?i)secretsmanager|get_secret_value|secretmanager|SecretClient|KeyVault"
    r"|\bvault\b|\bssm\b|get_parameter|keyring|credentials\.stripe"
    r"|Rails\.application\.credentials"
)
_CONFIG = re.compile(
    r"\bsettings\.|\bconfig\.|\bconfig\[|\bapp\.config\b|\bConfig\.|\bconf\.|getattr\("
    r"\s*settings|\bcfg\.|Configuration\["
)
_NAME = re.compile(r"['\"]([A-Z][A-Z0-9_]{2,})['\"]|env\.([A-Z][A-Z0-9_]{2,})")
_IDENT = re.compile(r"^[A-Za-z_$][\w.$]*")
_CHECK = re.compile(r"\b(?:if|unless|assert|guard|when)\b|\?\?=|\|\|=")
_FAILS = re.compile(
    r"\braise\b|\bthrow\b|\bexit\b|\babort\b|\bpanic\(|log\.Fatal|\bassert\b"
    r"|process\.exit|sys\.exit|\bfail\b|Error\("
)


_DEFINITION = re.compile(
    r"^\s*(?:async\s+)?(?:def|function|func|fun)\s+(?:\([^)]*\)\s*)?"
    r"(?P<name>[A-Za-z_$][\w$]*)\s*\("
    r"|^\s*(?:export\s+)?(?:const|let|var)\s+(?P<arrow>[A-Za-z_$][\w$]*)\s*=\s*"
    r"(?:async\s*)?\([^)]*\)\s*=>"
)
_CALL = re.compile(r"^(?:[A-Za-z_$][\w$]*\.)*(?P<name>[A-Za-z_$][\w$]*)\(\s*\)")
# How far a function body may run: enough for a lookup with a check around it.
_BODY_LINES = 15

FunctionIndex = dict[str, list[str]]


def index_functions(texts: list[str]) -> FunctionIndex:
    """Map each function name defined in texts to the lines of its body."""
    index: FunctionIndex = {}
    for text in texts:
        lines = text.splitlines()
        for number, line in enumerate(lines):
            match = _DEFINITION.match(line)
            if match:
                name = match.group("name") or match.group("arrow")
                index.setdefault(name, lines[number:number + _BODY_LINES])
    return index


@dataclass(frozen=True)
class ClientSite:
    """One place a Stripe client is configured, and the audit's judgement of it."""

    path: str
    line: int
    status: Status
    detail: str


def is_source_file(path: str) -> bool:
    """True for files written in a language with a Stripe SDK."""
    return PurePosixPath(path).suffix in SOURCE_SUFFIXES


def find_client_sites(path: str, text: str,
                      functions: FunctionIndex | None = None) -> list[ClientSite]:
    """Return every Stripe client configuration in one source file, judged.

    Args:
        functions: bodies of functions defined anywhere in the project, so that
            ``StripeClient(stripe_secret_key())`` is judged by that function.
    """
    lines = text.splitlines()
    sites: list[ClientSite] = []
    for index, line in enumerate(lines):
        match = _SITE.search(line)
        if match is None or _is_comment(line):
            continue
        expression = (match.group("assigned") or match.group("argument") or "").strip()
        if expression in ("", "{", "(", "["):
            # The key is on the next lines: `new Stripe(\n  process.env.X, ...`.
            expression = " ".join(part.strip() for part in lines[index + 1:index + 4])
        status, detail = judge_expression(expression, lines, functions=functions)
        sites.append(ClientSite(path, index + 1, status, detail))
    return sites


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(("#", "//", "*", "/*"))


def judge_expression(expression: str, lines: list[str], depth: int = 0,
                     functions: FunctionIndex | None = None) -> tuple[Status, str]:
    """Judge where expression gets the key from; follow one variable or call."""
    raw = expression.encode("utf-8", "replace")
    if KEY_PATTERN.search(raw) or PLACEHOLDER_PATTERN.search(raw):
        return Status.FAIL, "key written in the code"
    if _SECRETS_MANAGER.search(expression):
        return Status.PASS, "key read from a secrets manager"
    if _STRICT_ENV.search(expression) and not _DEFAULT.search(expression):
        return Status.PASS, "key read from the environment; a missing key raises"
    if _LENIENT_ENV.search(expression):
        return _judge_lenient(expression, lines)
    if _CONFIG.search(expression):
        return Status.PASS, "key read from the application's configuration"

    # `StripeClient(secret_key())`: judge the body of the function it calls.
    call = _CALL.match(expression)
    if call and depth == 0 and functions and call.group("name") in functions:
        return _judge_body(functions[call.group("name")], functions)

    # `stripe.api_key = key` or `new Stripe(apiKey)`: judge what `key` was set to.
    ident = _IDENT.match(expression)
    if ident and depth == 0:
        name = ident.group().split(".")[-1]
        assignment = re.compile(
            rf"(?:^|[\s(]){re.escape(name)}\s*(?::\s*[\w\[\]|\s]+)?\s*:?=\s*(.+)"
        )
        for line in lines:
            found = assignment.search(line)
            if found and not _SITE.search(line):
                status, detail = judge_expression(found.group(1), lines, depth + 1)
                if status is Status.WARN and _has_check(name, lines):
                    return Status.PASS, detail.split(";")[0] + "; checked explicitly"
                return status, detail
    return (Status.WARN, "could not tell where the key comes from; make sure it is "
            "read from the environment or a secrets manager")


def _judge_body(body: list[str], functions: FunctionIndex) -> tuple[Status, str]:
    """Judge a function that returns the key by the first place it reads one."""
    for line in body[1:]:
        if (_STRICT_ENV.search(line) or _LENIENT_ENV.search(line)
                or _SECRETS_MANAGER.search(line)
                or KEY_PATTERN.search(line.encode("utf-8", "replace"))):
            expression = re.sub(r"^\s*(?:return\s+|[\w.$]+\s*(?::[^=]+)?=\s*)", "",
                                line)
            status, detail = judge_expression(expression, body, depth=1,
                                              functions=functions)
            if status is Status.WARN and _FAILS.search("\n".join(body)):
                return Status.PASS, detail.split(";")[0] + "; checked explicitly"
            return status, detail
    return (Status.WARN, "could not tell where the key comes from; make sure it is "
            "read from the environment or a secrets manager")


def _judge_lenient(expression: str, lines: list[str]) -> tuple[Status, str]:
    if _FAILS.search(expression):
        # `os.getenv("X") or sys.exit(...)`: the fallback is to stop.
        return Status.PASS, "key read from the environment; checked explicitly"
    if _DEFAULT.search(expression):
        return (Status.WARN, "key read from the environment with a fallback value: "
                "a missing key goes unnoticed")
    names = [a or b for a, b in _NAME.findall(expression)]
    if any(_has_check(name, lines) for name in names):
        return Status.PASS, "key read from the environment; checked explicitly"
    return (Status.WARN, "key read from the environment, but a missing key only "
            "fails at the first Stripe call")


def _has_check(name: str, lines: list[str]) -> bool:
    """True when some condition on name leads to raise / throw / exit nearby."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    for index, line in enumerate(lines):
        if not word.search(line) or not _CHECK.search(line):
            continue
        if any(_FAILS.search(near) for near in lines[index:index + 3]):
            return True
    return False
