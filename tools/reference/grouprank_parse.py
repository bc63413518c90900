#!/usr/bin/env python3
"""GroupRank's answer extraction as the official inference does it
(AQ-MedAI/Diver Reranker/rerank_groupwise.py, GroupReranker._extract_rerank_output),
transcribed on hand-written completions: the <answer> part if present; the
last ```json block, else the last {...}; "[7]]" → "[7]"; a missing closing
brace added; whitespace collapsed; json.loads. Records the parsed dict or
null when it raises.

Writes test/fixtures/grouprank_parse.json. Run: /usr/bin/python3 tools/reference/grouprank_parse.py
"""
import json
import os
import re


def extract(output_str):
    m = re.search(r"<answer>(.*?)</answer>", output_str, re.DOTALL)
    if m:
        output_str = m.group(1).strip()
    try:
        blocks = re.findall(r"(?:```json\s*)([\s\S]+?)(?:\s*```)", output_str)
        if blocks:
            s = blocks[-1].strip()
        else:
            s = re.findall(r"\{[\s\S]*?\}", output_str)[-1]
        s = s.strip()
        s = re.sub(r'(\[\d+\])\]', r'\1', s)
        if s.count('{') > s.count('}'):
            s += '}'
        s = re.sub(r'\s+', ' ', s).replace('\n', ' ').strip()
        return dict(json.loads(s))
    except Exception:
        return None


CASES = [
    '<reason> doc 2 answers it </reason>\n<answer>\n```json\n{"[1]": 5, "[2]": 9, "[3]": 0}\n```\n</answer>',
    '<reason>x</reason><answer>{"[1]": 3, "[2]": 7}</answer>',
    'no tags at all {"[1]": 1} then {"[1]": 4, "[2]": 6}',
    '<answer>```json\n{"[1]]": 8, "[2]": 2}\n```</answer>',
    '<answer>```json\n{"[1]": 8, "[2]": 2\n```</answer>',
    '<answer> scores: {"[1]": 8, "[2]": 2 </answer>',
    '<reason>thinking only</reason>',
    '<answer>```json\n{"[1]": 8, [2]: 2}\n```</answer>',
    '<answer>{"[1]": 10,\n\n   "[2]":   4}</answer>',
    '',
]
out = os.path.join(os.path.dirname(__file__), "../../test/fixtures/grouprank_parse.json")
with open(out, "w") as f:
    json.dump({"source": "tools/reference/grouprank_parse.py", "cases": [dict(completion=c, parsed=extract(c)) for c in CASES]}, f, indent=1)
print("wrote", out, [extract(c) for c in CASES])
