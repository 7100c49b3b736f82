#!/usr/bin/env python3
"""Renders real chat templates with jinja2 exactly as Hugging Face transformers'
apply_chat_template does, and writes the outputs (or the error jinja2 raised) to
tests/fixtures/engine/chat_template/expected.json for tests/engine/chat_template_test.cpp.

The environment mirrors transformers' _compile_jinja_template: an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols
extension and a {% generation %} block that renders its body; tojson is json.dumps
with ensure_ascii=False (and indent / separators / sort_keys); raise_exception raises
TemplateError; strftime_now formats a fixed time (FIXED_NOW) so the fixture is
reproducible. render() gets messages, tools and documents (None unless given),
add_generation_prompt, bos_token, eos_token, then the case's extra variables, as
apply_chat_template passes them.

Run: .cache/venv-reference/bin/python tests/reference/make_chat_template_fixtures.py
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "engine", "chat_template")
TEMPLATES = os.path.join(FIXTURES, "templates")

# Thursday 26 September 2024, 14:30:05 (local time, as datetime.now() gives it).
FIXED_NOW = datetime.datetime(2024, 9, 26, 14, 30, 5)


class GenerationBlock(jinja2.ext.Extension):
    """transformers' AssistantTracker, without the mask: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return FIXED_NOW.strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# name -> (bos_token, eos_token): the models' own special tokens.
TEMPLATE_TOKENS = {
    "HuggingFaceTB-SmolLM2-135M-Instruct": ("<|im_start|>", "<|im_end|>"),
    "HuggingFaceTB-SmolLM3-3B": ("", "<|im_end|>"),
    "google-gemma-3-4b-it": ("<bos>", "<eos>"),
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "Qwen-Qwen2.5-7B-Instruct": ("", "<|im_end|>"),
    "Qwen-Qwen3-0.6B": ("", "<|im_end|>"),
    "mistralai-Mistral-7B-Instruct-v0.1": ("<s>", "</s>"),
    "mistralai-Mistral-Nemo-Instruct-2407": ("<s>", "</s>"),
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "chatml": ("", ""),
}

SYSTEM = {"role": "system", "content": "You are a concise assistant."}
UNICODE_TEXT = (
    "  Héllo wörld! 你好，世界 🙂👍🏽 — \"double\" and 'single' quotes, a\ttab,\n"
    "a backslash \\ and {{ not a tag }} {% neither %}\n\n  "
)

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYSTEM, {"role": "user", "content": "What is 2 + 2?"}],
    "multi_turn": [
        SYSTEM,
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "multi_turn_no_system": [
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one."},
    ],
    "unicode": [
        {"role": "system", "content": " Système: réponds en français. \n"},
        {"role": "user", "content": UNICODE_TEXT},
        {"role": "assistant", "content": "\n\nD'accord 👌\n"},
        {"role": "user", "content": "Encore\r\nune fois"},
    ],
    "roles_not_alternating": [
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second, without an answer in between."},
    ],
    "empty": [],
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["city"],
        },
    },
}

TOOL_CONVERSATION = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call12345",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temperature\": 21.5}"},
    {"role": "assistant", "content": "It is 21.5 °C in Paris."},
    {"role": "user", "content": "Thanks!"},
]

GEMMA_PARTS = [
    {"role": "system", "content": [{"type": "text", "text": "Describe images briefly."}]},
    {
        "role": "user",
        "content": [{"type": "image"}, {"type": "text", "text": "  What is in this picture?  "}],
    },
]

QWEN3_THINKING = [
    {"role": "user", "content": "Is 17 prime?"},
    {"role": "assistant", "content": "<think>\nCheck divisors up to 4.\n</think>\n\nYes, 17 is prime."},
    {"role": "user", "content": "And 21?"},
]


# Small templates for single features: (template, variables). Rendered with the same
# environment; the C++ test checks each output (or error) the same way.
INLINE = [
    # whitespace control, trim_blocks, lstrip_blocks
    ("a\n  {% if true %}\n    b\n  {% endif %}\nc", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("x {{- ' y ' -}} z", {}),
    ("  {{ 1 }}\n  {% set a = 1 %}\n{{ a }}", {}),
    ("{%+ if true %}\n  kept{% endif %}", {}),
    ("line\n    {# a comment #}\nnext", {}),
    ("a {#- trimmed -#} b", {}),
    ("{% raw %}{{ not evaluated }}{% endraw %} done", {}),
    ("trailing newline\n", {}),
    ("two trailing newlines\n\n", {}),
    ("crlf\r\nline\r\n{% if true %}\r\nx\r\n{% endif %}", {}),
    ("{% for i in range(3) %}\n  {{ i }}\n{% endfor %}\n", {}),
    # literals and printing
    ("{{ 'a\\nb\\tc\\\\d\\'e\\\"f\\x41\\u00e9' }}", {}),
    ('{{ "it\'s" }} {{ \'say "hi"\' }} {{ "a" "b" }}', {}),
    ("{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 0x1f }} {{ 0o17 }} {{ 0b101 }}", {}),
    ("{{ 1.5 }} {{ 1.0 }} {{ 2e3 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 100.0 }}", {}),
    ("{{ true }} {{ False }} {{ none }} {{ None }} {{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': 1} }}", {}),
    ("{{ (1,) }} {{ (1, 2) }} {{ () }} {{ ['it\\'s', \"q\\\"\", 'new\\nline'] }}", {}),
    ("{{ undefined_name }}|{{ undefined_name is defined }}|{{ x.y is defined }}", {"x": {}}),
    # arithmetic
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 10 / 4 }}", {}),
    ("{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 3 * 'ab' }} {{ 'ab' * 2 }} {{ [1] * 3 }} {{ 'x' ~ 1 ~ none }}", {}),
    ("{{ 1 + true }} {{ true + true }} {{ 1 == 1.0 }} {{ true == 1 }} {{ '1' == 1 }} {{ [1, 2] == [1, 2] }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2.0 }}", {}),
    ("{{ 1 < 'a' }}", {}),
    # logic, membership, conditionals
    ("{{ 0 or 'x' }} {{ '' and 1 }} {{ 'a' and 'b' }} {{ not [] }} {{ none or [] }}", {}),
    ("{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 'a' in undef }}", {}),
    ("{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}]", {}),
    # subscripts, slices, attributes
    ("{{ s[0] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[::2] }} {{ s[10:] }} {{ s|length }}", {"s": "héllo🙂"}),
    ("{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[5] }} {{ xs[-4:-1] }} {{ xs[1::2] }}", {"xs": [1, 2, 3, 4]}),
    ("{{ d.a }} {{ d['a'] }} {{ d.missing }} {{ d['b']['c'] }} {{ d.b.c }} {{ d.items is callable }}", {"d": {"a": 1, "b": {"c": 2}, "items": 3}}),
    ("{{ d['items'] }}", {"d": {"items": 3}}),
    ("{{ undefined_thing.attribute }}", {}),
    ("{{ none.attribute }}|{{ none['k'] }}", {}),
    # methods
    ("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a\\n'.rstrip('\\n') }}", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a.b.c'.rsplit('.', 1) }}", {}),
    ("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'abc'.upper() }} {{ 'ABC'.lower() }}", {}),
    ("{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }}", {}),
    ("{{ ', '.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '</think>x'.split('</think>')[-1] }}", {}),
    ("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", {"d": {"a": 1, "b": [2]}}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("{{ xs.append(3) }}", {"xs": [1]}),
    ("{{ xs.index(2) }} {{ xs.count(1) }}", {"xs": [1, 2, 1]}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ [1, 2]|length }}|{{ 'héllo'|count }}|{{ {'a': 1}|length }}", {}),
    ("{{ 'Hello World'|lower }} {{ 'hi'|upper }} {{ 'hello big-world (x)'|title }} {{ 'hELLO wORLD'|capitalize }}", {}),
    ("{{ 'a-b-c'|replace('-', '+') }} {{ [1, 2, 3]|join(', ') }} {{ ['a', 'b']|join }} {{ users|join(', ', attribute='name') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("{{ 5|string }}{{ [1]|string }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ '3.9'|int }} {{ 2.7|int }} {{ '2.5'|float }} {{ 'x'|float }} {{ 3|float }}", {}),
    ("{{ 'abc'|list }} {{ {'a': 1, 'b': 2}|list }} {{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'abc'|first }} {{ []|first }}", {}),
    ("{{ undef|default('dflt') }} {{ ''|default('dflt') }} {{ ''|default('dflt', true) }} {{ none|d('x', boolean=true) }}", {}),
    ("{{ d|items|list }} {{ undef|items|list }} {% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", {"d": {"x": 1, "y": [2]}}),
    ("{{ ms|selectattr('role', 'equalto', 'user')|list }} {{ ms|rejectattr('role', 'equalto', 'user')|map(attribute='content')|list }}", {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}),
    ("{{ ms|selectattr('tool')|list|length }} {{ ms|map(attribute='missing', default='-')|list }} {{ [1, 0, 2]|select|list }} {{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('even')|list }}", {"ms": [{"tool": 1}, {}]}),
    ("{{ ['a', 'B']|map('upper')|list }} {{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ us|sort(attribute='n')|map(attribute='n')|list }}", {"us": [{"n": 2}, {"n": 1}]}),
    ("{{ [1, 2, 2, 1]|unique|list }} {{ [1, 2, 3]|sum }} {{ [3, 1]|min }} {{ [3, 1]|max }} {{ -3|abs }} {{ 2.5|round }} {{ 3.14159|round(2) }} {{ 'abc'|reverse }} {{ [1, 2]|reverse|list }}", {}),
    ("{{ x|tojson }}", {"x": {"b": [1, 2.5, None, True], "a": "é\"\\\n\t\u0001", "c": {}, "d": []}}),
    ("{{ x|tojson(indent=2) }}", {"x": {"b": [1, {"z": None}], "a": "s", "e": [], "f": {}}}),
    ("{{ x|tojson(indent=4, sort_keys=true) }}", {"x": {"b": 1, "a": [2]}}),
    ("{{ x|tojson(separators=(',', ':')) }} {{ 'é🙂'|tojson }} {{ 'é'|tojson(ensure_ascii=true) }} {{ 1.0|tojson }} {{ 1e100|tojson }}", {"x": {"a": [1, 2]}}),
    ("{{ undef|tojson }}", {}),
    ("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x'|safe }}", {}),
    ("{{ '<a href=\"x\">&'|e }}", {}),
    ("{{ x|nosuchfilter }}", {}),
    # tests
    ("{{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is mapping }}", {}),
    ("{{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ undef is iterable }} {{ [] is sequence }} {{ {} is sequence }} {{ none is none }} {{ false is false }} {{ 1 is true }}", {}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 1 is sameas 1 }} {{ none is sameas none }} {{ 2 is in [1, 2] }} {{ 'a' is equalto 'a' }} {{ 2 is gt 1 }}", {}),
    ("{{ x is not defined }} {{ x is undefined }} {{ 'x' is lower }} {{ 'X' is upper }} {{ range is callable }}", {}),
    ("{{ x is nosuchtest }}", {}),
    # for loops
    ("{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("{% for x in xs %}{{ loop.previtem|default('-') }}{{ x }}{{ loop.nextitem|default('-') }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("{% for x in [] %}never{% else %}empty{% endfor %} {% for x in undef %}x{% else %}undefined is empty{% endfor %}", {}),
    ("{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{{ loop.length }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for c in 'héy' %}[{{ c }}]{% endfor %} {% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %} {% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}", {}),
    ("{{ range(5)|list }} {{ range(2, 5)|list }} {{ range(10, 0, -3)|list }}", {}),
    ("{{ range(200000)|length }}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("{% for x in xs %}{% for y in ys %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}{{ loop.index }}|{% endfor %}", {"xs": [1, 2], "ys": ["a", "b"]}),
    # scoping, set, namespace
    ("{% set x = 1 %}{% for i in range(2) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% if true %}{% set y = 'set in if' %}{% endif %}{{ y }}", {}),
    ("{% set ns = namespace(count=0, items=[]) %}{% for i in range(3) %}{% set ns.count = ns.count + i %}{% endfor %}{{ ns.count }} {{ ns.items }} {{ ns.missing }}", {}),
    ("{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}", {}),
    ("{% set a, b = [1, 2] %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}", {}),
    ("{% set x %}  block {{ 1 + 1 }}  {% endset %}[{{ x }}] {% set y | trim | upper %}  shout  {% endset %}[{{ y }}]", {}),
    ("{% set d = {'a': 1} %}{% set d2 = dict(b=2, c='x') %}{{ d }} {{ d2 }}", {}),
    ("{% set x = 'outer' %}{% set s = 1 %}{{ s.attr.deeper }}", {}),
    ("{% set v = 1 %}{% set v.attr = 2 %}", {}),
    ("{% with a = 1 %}{{ a }}{% endwith %}{{ a }}", {}),
    ("{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    # macros
    ("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }} [{{ greet() }}]", {}),
    ("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(10) }}", {}),
    ("{% macro m() %}x{% endmacro %}{{ m(1) }}", {}),
    # globals
    ("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j') }}", {}),
    ("{{ raise_exception('custom failure: ' ~ 42) }}", {}),
    ("{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ messages|length }}|{{ tools }}|{{ documents }}", {}),
    # generation block (transformers' assistant marker)
    ("{% generation %}inside {{ 1 }}{% endgeneration %} after", {}),
    # syntax errors
    ("{% if true %}never closed", {}),
    ("{{ unterminated", {}),
    ("{% for x in %}{% endfor %}", {}),
    ("{{ 'unterminated string }}", {}),
    ("{# open comment", {}),
    ("{% endif %}", {}),
    ("{% unknowntag %}", {}),
    ("{{ (1, 2 }}", {}),
    ("{{ 1 + }}", {}),
]


def cases():
    names = sorted(TEMPLATE_TOKENS)
    for name in names:
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (True, False):
                yield name, f"{conv_name}/{'gen' if agp else 'nogen'}", conv, agp, {}
    tools = {"tools": [WEATHER_TOOL]}
    for name in (
        "meta-llama-Llama-3.1-8B-Instruct",
        "meta-llama-Llama-3.2-3B-Instruct",
        "Qwen-Qwen2.5-7B-Instruct",
        "Qwen-Qwen3-0.6B",
        "mistralai-Mistral-Nemo-Instruct-2407",
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
    ):
        yield name, "tools/gen", TOOL_CONVERSATION, True, tools
        yield name, "tools_no_calls/gen", CONVERSATIONS["system_user"], True, tools
    yield "meta-llama-Llama-3.1-8B-Instruct", "tools_in_system/gen", TOOL_CONVERSATION, True, {
        "tools": [WEATHER_TOOL],
        "tools_in_user_message": False,
    }
    yield "meta-llama-Llama-3.1-8B-Instruct", "builtin_tools/gen", CONVERSATIONS["system_user"], True, {
        "builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"],
        "date_string": "01 Jan 2025",
    }
    yield "meta-llama-Llama-3.1-8B-Instruct", "tool_calls_without_tools/gen", TOOL_CONVERSATION, True, {}
    yield "meta-llama-Llama-3.2-3B-Instruct", "date_string/gen", CONVERSATIONS["system_user"], True, {
        "date_string": "05 Mar 2025"
    }
    yield "google-gemma-3-4b-it", "content_parts/gen", GEMMA_PARTS, True, {}
    yield "Qwen-Qwen3-0.6B", "thinking/gen", QWEN3_THINKING, True, {}
    yield "Qwen-Qwen3-0.6B", "thinking_disabled/gen", QWEN3_THINKING, True, {"enable_thinking": False}
    yield "HuggingFaceTB-SmolLM3-3B", "thinking_disabled/gen", CONVERSATIONS["multi_turn"], True, {
        "enable_thinking": False
    }


def main():
    env = make_env()
    templates = {}
    out_cases = []
    for name, case_name, messages, agp, variables in cases():
        if name not in templates:
            with open(os.path.join(TEMPLATES, name + ".jinja"), encoding="utf-8") as f:
                templates[name] = env.from_string(f.read())
        bos, eos = TEMPLATE_TOKENS[name]
        kwargs = {"tools": None, "documents": None}
        kwargs.update(variables)
        case = {
            "template": name,
            "name": case_name,
            "messages": messages,
            "add_generation_prompt": agp,
            "bos_token": bos,
            "eos_token": eos,
            "variables": variables,
        }
        try:
            kw = dict(kwargs)
            tools = kw.pop("tools")
            documents = kw.pop("documents")
            case["expected"] = templates[name].render(
                messages=messages,
                tools=tools,
                documents=documents,
                add_generation_prompt=agp,
                bos_token=bos,
                eos_token=eos,
                **kw,
            )
        except jinja2.exceptions.TemplateError as e:
            case["error"] = f"{type(e).__name__}: {e}"
        except Exception as e:  # TypeError etc. inside the template also fail apply_chat_template
            case["error"] = f"{type(e).__name__}: {e}"
        out_cases.append(case)
    inline_cases = []
    for source, variables in INLINE:
        case = {"template": source, "variables": variables}
        try:
            tmpl = env.from_string(source)
            case["expected"] = tmpl.render(
                messages=[], tools=None, documents=None, add_generation_prompt=True, bos_token="<s>",
                eos_token="</s>", **variables
            )
        except Exception as e:
            case["error"] = f"{type(e).__name__}: {e}"
        inline_cases.append(case)
    doc = {
        "generator": "tests/reference/make_chat_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "now": FIXED_NOW.strftime("%Y-%m-%dT%H:%M:%S"),
        "cases": out_cases,
        "inline": inline_cases,
    }
    path = os.path.join(FIXTURES, "expected.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for c in out_cases if "error" in c)
    print(f"wrote {path}: {len(out_cases)} cases ({errors} expected errors)", file=sys.stderr)


if __name__ == "__main__":
    main()
