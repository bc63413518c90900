#!/usr/bin/env python3
"""Rank-R1's reward on hand-written completions, with the official code's
regular expression and rule (ielab/llm-rankers Rank-R1/train_grpo.py,
reward_func_setwise: re.search(r'<think>.*?</think>\\s*<answer>(.*?)</answer>',
content, re.DOTALL); 1 iff it matches and group(1).strip() == the label) and
the inference parse (Rank-R1/run_setwise.py: the same pattern on the
lowercased completion, group(1).strip()).

Writes test/fixtures/rank_r1_reward.json. Run: /usr/bin/python3 tools/reference/rank_r1_reward.py
"""
import json
import os
import re

PATTERN = r'<think>.*?</think>\s*<answer>(.*?)</answer>'
COMPLETIONS = [
    "<think> doc 3 mentions cats </think> <answer>[3]</answer>",
    "<think>a\nmulti-line\nthought</think>\n\n<answer> [3] </answer>",
    "<think>x</think><answer>[3]</answer> trailing text",
    "preamble <think>x</think> <answer>[3]</answer>",
    "<answer>[3]</answer>",
    "<think>x</think> the answer is [3]",
    "<think>x</think> <answer>3</answer>",
    "<think>x</think> <answer>[2]</answer>",
    "<think>x</think> <answer>[12]</answer>",
    "<THINK>x</THINK> <ANSWER>[3]</ANSWER>",
    "<think>x</think> <answer>[3]</answer> <think>y</think> <answer>[2]</answer>",
    "<think>x <answer>[2]</answer></think> <answer>[3]</answer>",
    "",
]
cases = []
for c in COMPLETIONS:
    m = re.search(PATTERN, c, re.DOTALL)
    reward = 1 if (m and m.group(1).strip() == "[3]") else 0
    mi = re.search(PATTERN, c.lower(), re.DOTALL)
    cases.append(dict(completion=c, reward=reward, inference=mi.group(1).strip() if mi else None))
out = os.path.join(os.path.dirname(__file__), "../../test/fixtures/rank_r1_reward.json")
with open(out, "w") as f:
    json.dump({"source": "tools/reference/rank_r1_reward.py", "label": "[3]", "cases": cases}, f, indent=1)
print("wrote", out, [c["reward"] for c in cases])
