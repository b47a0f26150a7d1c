"""One run's results folder: a JUnit XML file, a human summary, and every test's logs.

    run = RunResults("out/hil", target="virtual")
    d = run.test_dir("test_boot.py::test_hello")        # logs/<test>/: dut.log, frames.jsonl, board/node.log
    run.add(report, figures={"records_lost": 0}); run.write()

Layout: ``<root>/<UTC stamp>-<target>/`` with ``junit.xml`` (one testcase per test, figures as
properties, the failure text), ``summary.md`` (pass/fail per test and the campaign figures),
``summary.json`` (the same for machines) and ``logs/``; ``<root>/latest`` points at the newest run.

Campaign figures, summed or worst over the run's tests: ``trials`` (power cuts), ``records_lost``,
``records_corrupted``, ``duplicates``, ``worst_clock_error_s``. A test reports them with
``bench.figure(name, value)`` (or the ``figures`` fixture) under these names.
"""

import json
import os
import re
import time
import xml.etree.ElementTree as ET

SUMMED = ("trials", "records_lost", "records_corrupted", "duplicates", "intervals_expected", "intervals_upstream",
          "link_faults_injected")  # fmt: skip
WORST = ("worst_clock_error_s",)


class RunResults:
    def __init__(self, root, target, argv=()):
        self.started = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.started))
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, "%s-%s" % (stamp, _safe(target)))
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.target = target
        self.argv = list(argv)
        self.tests = {}  # nodeid -> {"outcome", "duration_s", "message", "figures", "logs"}
        self.figures = {}  # nodeid -> {name: value}

    def test_dir(self, nodeid):
        d = os.path.join(self.dir, "logs", _safe(nodeid.split("/")[-1]))
        os.makedirs(d, exist_ok=True)
        return d

    def figure(self, nodeid, name, value):
        self.figures.setdefault(nodeid, {})[name] = value

    def add(self, report):
        """Fold in one pytest TestReport (setup, call or teardown)."""
        t = self.tests.setdefault(report.nodeid, {"outcome": "passed", "duration_s": 0.0, "message": ""})
        t["duration_s"] = round(t["duration_s"] + report.duration, 2)
        if report.failed:
            t["outcome"] = "failed" if report.when == "call" else "error"
            t["message"] = str(report.longrepr)[-6000:]
        elif hasattr(report, "wasxfail") and report.when == "call":
            t["outcome"] = "xpassed" if report.passed else "xfailed"
            t["message"] = report.wasxfail
        elif report.skipped and t["outcome"] == "passed":
            t["outcome"] = "skipped"
            lr = report.longrepr
            t["message"] = lr[2] if isinstance(lr, tuple) else str(lr)

    def campaign(self):
        out = {}
        for figs in self.figures.values():
            for k, v in figs.items():
                if k in SUMMED:
                    out[k] = out.get(k, 0) + v
                elif k in WORST:
                    out[k] = max(out.get(k, v), v)
        return out

    def write(self):
        for nodeid, t in self.tests.items():
            t["figures"] = self.figures.get(nodeid, {})
        counts = {}
        for t in self.tests.values():
            counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
        doc = {"target": self.target, "argv": self.argv, "started_utc": _iso(self.started),
               "duration_s": round(time.time() - self.started, 1), "counts": counts, "campaign": self.campaign(),
               "tests": self.tests}  # fmt: skip
        with open(os.path.join(self.dir, "summary.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True, default=str)
        with open(os.path.join(self.dir, "summary.md"), "w") as f:
            f.write(self._markdown(doc))
        self._junit(doc)
        link = os.path.join(self.root, "latest")
        try:
            if os.path.islink(link):
                os.remove(link)
            os.symlink(os.path.basename(self.dir), link)
        except OSError:
            pass
        return self.dir

    def _markdown(self, doc):
        counts = ", ".join("%d %s" % (n, k) for k, n in sorted(doc["counts"].items()))
        lines = ["# HIL run: %s" % doc["target"], "",
                 "Started %s, took %.0f s: %s." % (doc["started_utc"], doc["duration_s"], counts), "",
                 "Command: `pytest %s`" % " ".join(doc["argv"]), "", "## Campaign figures", ""]  # fmt: skip
        camp = doc["campaign"]
        names = [
            ("trials", "power-cut trials"),
            ("records_lost", "stored records lost"),
            ("records_corrupted", "records corrupted"),
            ("duplicates", "intervals upstream twice"),
            ("intervals_expected", "intervals sampled"),
            ("intervals_upstream", "intervals upstream (once)"),
            ("link_faults_injected", "link faults injected"),
            ("worst_clock_error_s", "worst clock error (s)"),
        ]
        for key, label in names:
            lines.append("- %s: %s" % (label, camp.get(key, "not measured in this run")))
        lines += ["", "## Tests", "", "| test | result | time (s) | figures |", "| --- | --- | --- | --- |"]
        for nodeid, t in sorted(doc["tests"].items()):
            figs = ", ".join("%s=%s" % kv for kv in sorted(t["figures"].items()))
            lines.append("| %s | %s | %.1f | %s |" % (nodeid, t["outcome"].upper(), t["duration_s"], figs))
        bad = [(n, t) for n, t in sorted(doc["tests"].items()) if t["outcome"] not in ("passed", "xpassed")]
        if bad:
            lines += ["", "## Failures and skips", ""]
            for nodeid, t in bad:
                lines += ["### %s (%s)" % (nodeid, t["outcome"]), "", "```", t["message"].strip()[-3000:], "```", ""]
        lines += ["", "Logs: `logs/<test>/` (dut.log: the raw serial stream; frames.jsonl: every frame decoded; "
                  "board/node.log: a virtual node's console).", ""]  # fmt: skip
        return "\n".join(lines)

    def _junit(self, doc):
        counts = doc["counts"]
        suite = ET.Element("testsuite", name="hil_tests[%s]" % doc["target"], tests=str(len(doc["tests"])),
                           failures=str(counts.get("failed", 0)), errors=str(counts.get("error", 0)),
                           skipped=str(counts.get("skipped", 0) + counts.get("xfailed", 0)),
                           time=str(doc["duration_s"]), timestamp=doc["started_utc"])  # fmt: skip
        props = ET.SubElement(suite, "properties")
        for k, v in sorted(doc["campaign"].items()):
            ET.SubElement(props, "property", name=k, value=str(v))
        for nodeid, t in sorted(doc["tests"].items()):
            path, _, name = nodeid.partition("::")
            case = ET.SubElement(suite, "testcase", classname=path.replace("/", ".").removesuffix(".py"), name=name,
                                 time=str(t["duration_s"]))  # fmt: skip
            if t["figures"]:
                cp = ET.SubElement(case, "properties")
                for k, v in sorted(t["figures"].items()):
                    ET.SubElement(cp, "property", name=k, value=str(v))
            if t["outcome"] in ("failed", "error"):
                el = ET.SubElement(
                    case,
                    "failure" if t["outcome"] == "failed" else "error",
                    message=t["message"].strip().splitlines()[-1][:300] if t["message"].strip() else "",
                )
                el.text = _xml_safe(t["message"])
            elif t["outcome"] in ("skipped", "xfailed"):
                ET.SubElement(
                    case,
                    "skipped",
                    type="pytest.xfail" if t["outcome"] == "xfailed" else "pytest.skip",
                    message=t["message"][:300],
                )
        ET.ElementTree(suite).write(os.path.join(self.dir, "junit.xml"), encoding="utf-8", xml_declaration=True)


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", name)[:120]


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _xml_safe(text):
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", text)
