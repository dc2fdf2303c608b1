// Package knowledge is vmtriage's knowledge base: runbooks written in
// Markdown with a small YAML front matter, matched to incidents, searched
// with BM25 for `/triage kb`, served read-only as HTML under /kb/, and the
// resolution notes that tell the next on-call how the same cause was fixed
// before.
//
// A runbook file looks like this:
//
//	---
//	title: Host hardware fault
//	tags: [ecc, mce, hardware, evacuate]
//	applies_to:
//	  rules: [vm-crash-on-failing-host, host-fault-persistent]
//	  causes: [host-hardware-fault]
//	  events: [VirtualMachineHostCrashed]
//	  components: [libvirtd]
//	---
//	# Host hardware fault
//	...
//
// Its slug is the file name without ".md". The front matter is strict:
// unknown or duplicate keys, wrong types and a missing title are errors that
// name the file and line, and a folder with any bad file is refused whole
// (on reload the runbooks in force stay). A starter set, one runbook per
// default rule, is embedded in the binary (knowledge/runbooks).
//
// Matching ranks a runbook that names the incident's rule above one that
// names its platform event, above one that names its cause, above one that
// names its component (the service or source the incident is about).
package knowledge
