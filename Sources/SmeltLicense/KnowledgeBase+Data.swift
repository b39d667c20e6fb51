// The license knowledge base: DATA, not logic. Parsed once at start-up by `KnowledgeBase.builtIn`.
// Edit the YAML below, bump `version`, and run `swift test --filter SmeltLicenseTests`.
// Every value is explained (and every judgement call justified) in docs/LICENSES.md.
//
// Permissions: allowed | conditional | forbidden | unknown
//   allowed      allowed, provided the obligations (attribution, notice, naming, use policy) are met
//   conditional  allowed only under the condition in `conditions.<property>`
//   forbidden    not without a separate agreement with the rights holder
// derivative_terms: any (permissive) | same (share-alike) | carry (restrictions travel) | none (no derivatives)
// fingerprints: phrase sets that recognise the license text, its notice or its use policy by content.

extension KnowledgeBase {
    /// The built-in knowledge base as YAML.
    static let builtInYAML = #"""
version: "2026.11.1"

licenses:

# ---------------------------------------------------------------- permissive
- id: apache-2.0
  name: Apache License 2.0
  url: https://www.apache.org/licenses/LICENSE-2.0
  aliases: [apache 2.0, apache2, apache-2, apache license 2.0, Apache-2.0]
  links: [apache.org/licenses/license-2.0, choosealicense/licenses/blob/main/markdown/apache-2.0]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: true
  notes: Keep the LICENSE and any NOTICE file; state changes in modified files (section 4).
  fingerprints:
    - ["Apache License", "Version 2.0, January 2004"]
    - ["Licensed under the Apache License, Version 2.0"]

- id: mit
  name: MIT License
  url: https://opensource.org/license/mit
  aliases: [mit license, expat]
  links: [opensource.org/license/mit, opensource.org/licenses/mit]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: true
  notes: The copyright notice and permission notice must be included in all copies or substantial portions.
  fingerprints:
    - ["Permission is hereby granted, free of charge, to any person obtaining a copy", "The above copyright notice and this permission notice shall be included"]

- id: bsd-3-clause
  name: BSD 3-Clause License
  url: https://opensource.org/license/bsd-3-clause
  aliases: [bsd-3, bsd 3-clause, new bsd, revised bsd]
  links: [opensource.org/license/bsd-3-clause, opensource.org/licenses/bsd-3-clause]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: true
  naming: ["Do not use the names of the copyright holder or contributors to endorse or promote derived products without permission (BSD-3-Clause clause 3)"]
  fingerprints:
    - ["Redistribution and use in source and binary forms, with or without modification, are permitted", "Neither the name of"]

- id: bsd-2-clause
  name: BSD 2-Clause License
  url: https://opensource.org/license/bsd-2-clause
  aliases: [bsd-2, simplified bsd]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: true
  fingerprints:
    - ["Redistribution and use in source and binary forms, with or without modification, are permitted"]

- id: cc0-1.0
  name: Creative Commons Zero v1.0 Universal
  url: https://creativecommons.org/publicdomain/zero/1.0/legalcode
  aliases: [cc0]
  links: [creativecommons.org/publicdomain/zero/1.0]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: false
  fingerprints:
    - ["CC0 1.0 Universal", "Statement of Purpose"]

- id: cc-by-4.0
  name: Creative Commons Attribution 4.0 International
  url: https://creativecommons.org/licenses/by/4.0/legalcode
  aliases: [cc by 4.0, cc-by]
  links: [creativecommons.org/licenses/by/4.0]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: any
  attribution: true
  notes: Credit the creator, link the license, indicate changes (section 3(a)).
  fingerprints:
    - ["Creative Commons Attribution 4.0 International Public License"]

# ---------------------------------------------------------------- share-alike
- id: cc-by-sa-4.0
  name: Creative Commons Attribution-ShareAlike 4.0 International
  url: https://creativecommons.org/licenses/by-sa/4.0/legalcode
  aliases: [cc by-sa 4.0, cc-by-sa]
  links: [creativecommons.org/licenses/by-sa/4.0]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: conditional
  derivative_terms: same
  compatible_with: [gpl-3.0]
  attribution: true
  conditions:
    redistribute_derivatives: adapted material must be released under CC-BY-SA-4.0 (or a BY-SA compatible license, e.g. GPL-3.0) with no added restrictions
  fingerprints:
    - ["Creative Commons Attribution-ShareAlike 4.0 International Public License"]

- id: gpl-3.0
  name: GNU General Public License v3.0
  url: https://www.gnu.org/licenses/gpl-3.0.txt
  aliases: [gplv3, gpl-3, gpl-3.0-only, gpl-3.0-or-later, gpl]
  links: [gnu.org/licenses/gpl-3.0]
  commercial: allowed
  redistribute_weights: conditional
  redistribute_derivatives: conditional
  derivative_terms: same
  compatible_with: [agpl-3.0]
  attribution: true
  conditions:
    redistribute_weights: ship the license and offer the corresponding source (the preferred form for modification)
    redistribute_derivatives: the whole derived work must be released under GPL-3.0 with its corresponding source, no further restrictions
  fingerprints:
    - ["GNU GENERAL PUBLIC LICENSE", "Version 3, 29 June 2007"]

- id: agpl-3.0
  name: GNU Affero General Public License v3.0
  url: https://www.gnu.org/licenses/agpl-3.0.txt
  aliases: [agplv3, agpl-3, agpl-3.0-only, agpl-3.0-or-later, agpl]
  links: [gnu.org/licenses/agpl-3.0]
  commercial: conditional
  redistribute_weights: conditional
  redistribute_derivatives: conditional
  derivative_terms: same
  compatible_with: [gpl-3.0]
  attribution: true
  conditions:
    commercial: users interacting with a modified version over a network must be offered its corresponding source (section 13)
    redistribute_weights: ship the license and offer the corresponding source
    redistribute_derivatives: the whole derived work must be released under AGPL-3.0 with its corresponding source
  fingerprints:
    - ["GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3, 19 November 2007"]

# ---------------------------------------------------------------- non-commercial Creative Commons
- id: cc-by-nc-4.0
  name: Creative Commons Attribution-NonCommercial 4.0 International
  url: https://creativecommons.org/licenses/by-nc/4.0/legalcode
  aliases: [cc by-nc 4.0, cc-by-nc]
  links: [creativecommons.org/licenses/by-nc/4.0]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: conditional
  derivative_terms: carry
  attribution: true
  conditions:
    redistribute_weights: non-commercial purposes only, with attribution and a link to the license
    redistribute_derivatives: non-commercial purposes only, with attribution, a link to the license and an indication of changes
  fingerprints:
    - ["Creative Commons Attribution-NonCommercial 4.0 International Public License"]

- id: cc-by-nc-sa-4.0
  name: Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International
  url: https://creativecommons.org/licenses/by-nc-sa/4.0/legalcode
  aliases: [cc by-nc-sa 4.0, cc-by-nc-sa]
  links: [creativecommons.org/licenses/by-nc-sa/4.0]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: conditional
  derivative_terms: same
  attribution: true
  conditions:
    redistribute_weights: non-commercial purposes only, with attribution
    redistribute_derivatives: non-commercial purposes only, and adapted material must be released under CC-BY-NC-SA-4.0
  fingerprints:
    - ["Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International Public License"]

- id: cc-by-nc-nd-4.0
  name: Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International
  url: https://creativecommons.org/licenses/by-nc-nd/4.0/legalcode
  aliases: [cc by-nc-nd 4.0, cc-by-nc-nd]
  links: [creativecommons.org/licenses/by-nc-nd/4.0]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: forbidden
  derivative_terms: none
  attribution: true
  conditions:
    redistribute_weights: verbatim copies only, non-commercial purposes only, with attribution
  notes: Adapted material (a quantized file included) may be made but not shared (section 2(a)(1)(B)).
  fingerprints:
    - ["Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International Public License"]

# ---------------------------------------------------------------- responsible-AI licenses
- id: openrail
  name: Open RAIL License (generic)
  url: https://www.licenses.ai/ai-licenses
  aliases: [open-rail, openrail-m, open rail-m]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: the license's use-based restrictions (Attachment A of the specific RAIL license)
  notes: Use-based restrictions must be passed on, as an enforceable provision, to everyone receiving the model or a derivative.
  fingerprints:
    - ["Open RAIL", "Attachment A", "Use Restrictions"]

- id: openrail++
  name: CreativeML Open RAIL++-M License
  url: https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md
  aliases: [openrail++-m, creativeml-openrail++-m]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the CreativeML Open RAIL++-M License
  notes: Use-based restrictions (Attachment A) must be passed on to every recipient of the model or a derivative; a copy of the license must accompany it.
  fingerprints:
    - ["CreativeML Open RAIL++-M License"]

- id: creativeml-openrail-m
  name: CreativeML Open RAIL-M License
  url: https://huggingface.co/spaces/CompVis/stable-diffusion-license
  aliases: [creativeml open rail-m]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the CreativeML Open RAIL-M License
  fingerprints:
    - ["CreativeML Open RAIL-M"]

- id: bigscience-openrail-m
  name: BigScience Open RAIL-M License
  url: https://bigscience.huggingface.co/blog/bigscience-openrail-m
  aliases: [bigscience open rail-m]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the BigScience Open RAIL-M License
  fingerprints:
    - ["BigScience Open RAIL-M"]
    - ["BigScience OpenRAIL-M"]

- id: bigscience-bloom-rail-1.0
  name: BigScience RAIL License v1.0
  url: https://huggingface.co/spaces/bigscience/license
  aliases: [bloom rail, bigscience-bloom-rail]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the BigScience RAIL License v1.0
  fingerprints:
    - ["BigScience RAIL License v1.0"]

- id: bigcode-openrail-m
  name: BigCode Open RAIL-M v1 License
  url: https://www.bigcode-project.org/docs/pages/bigcode-openrail/
  aliases: [bigcode open rail-m]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the BigCode Open RAIL-M License
  fingerprints:
    - ["BigCode Open RAIL-M"]

# ---------------------------------------------------------------- Meta Llama
- id: llama2
  name: Llama 2 Community License Agreement
  url: https://ai.meta.com/llama/license/
  aliases: [llama-2, llama 2, llama2-community]
  links: [ai.meta.com/llama/license, ai.meta.com/resources/models-and-libraries/llama-downloads]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Llama 2 is licensed under the LLAMA 2 Community License, Copyright (c) Meta Platforms, Inc. All Rights Reserved."
  use_policy: https://ai.meta.com/llama/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Llama 2 version release date; otherwise a license from Meta is required
  notes: Ship a copy of the agreement; the Llama Materials may not be used to improve other large language models (section 1.b.v).
  fingerprints:
    - ["LLAMA 2 COMMUNITY LICENSE AGREEMENT"]
    - ["Llama 2 is licensed under the LLAMA 2 Community License"]
    - ["Llama 2 Acceptable Use Policy"]

- id: llama3
  name: Meta Llama 3 Community License Agreement
  url: https://www.llama.com/llama3/license/
  aliases: [llama-3, llama 3, llama3-community]
  links: [llama.com/llama3/license, llama.meta.com/llama3/license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Meta Llama 3 is licensed under the Meta Llama 3 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
  naming:
    - "Display \"Built with Meta Llama 3\" on a related website, user interface, blog post, about page or product documentation"
    - "Include \"Llama 3\" at the beginning of the name of any AI model built with it that is distributed"
  use_policy: https://www.llama.com/llama3/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Meta Llama 3 version release date; otherwise a license from Meta is required
  notes: Ship a copy of the agreement. The Llama 3 license (unlike 3.1) forbids using the materials to improve other large language models (section 1.b.v).
  fingerprints:
    - ["META LLAMA 3 COMMUNITY LICENSE AGREEMENT"]
    - ["Meta Llama 3 is licensed under the Meta Llama 3 Community License"]
    - ["Meta Llama 3 Acceptable Use Policy"]

- id: llama3.1
  name: Llama 3.1 Community License Agreement
  url: https://www.llama.com/llama3_1/license/
  aliases: [llama-3.1, llama 3.1, llama3_1]
  links: [llama.com/llama3_1/license, llama.meta.com/llama3_1/license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
  naming:
    - "Display \"Built with Llama\" on a related website, user interface, blog post, about page or product documentation"
    - "Include \"Llama\" at the beginning of the name of any AI model built with it that is distributed"
  use_policy: https://www.llama.com/llama3_1/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Llama 3.1 version release date; otherwise a license from Meta is required
  notes: Ship a copy of the agreement and the notice in a "Notice" text file.
  fingerprints:
    - ["LLAMA 3.1 COMMUNITY LICENSE AGREEMENT"]
    - ["Llama 3.1 is licensed under the Llama 3.1 Community License"]
    - ["Llama 3.1 Acceptable Use Policy"]

- id: llama3.2
  name: Llama 3.2 Community License Agreement
  url: https://www.llama.com/llama3_2/license/
  aliases: [llama-3.2, llama 3.2, llama3_2]
  links: [llama.com/llama3_2/license, llama.meta.com/llama3_2/license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Llama 3.2 is licensed under the Llama 3.2 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
  naming:
    - "Display \"Built with Llama\" on a related website, user interface, blog post, about page or product documentation"
    - "Include \"Llama\" at the beginning of the name of any AI model built with it that is distributed"
  use_policy: https://www.llama.com/llama3_2/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Llama 3.2 version release date; otherwise a license from Meta is required
  notes: The Acceptable Use Policy withholds the multimodal (vision) models' rights from individuals and companies domiciled in the EU.
  fingerprints:
    - ["LLAMA 3.2 COMMUNITY LICENSE AGREEMENT"]
    - ["Llama 3.2 is licensed under the Llama 3.2 Community License"]
    - ["Llama 3.2 Acceptable Use Policy"]

- id: llama3.3
  name: Llama 3.3 Community License Agreement
  url: https://www.llama.com/llama3_3/license/
  aliases: [llama-3.3, llama 3.3, llama3_3]
  links: [llama.com/llama3_3/license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Llama 3.3 is licensed under the Llama 3.3 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
  naming:
    - "Display \"Built with Llama\" on a related website, user interface, blog post, about page or product documentation"
    - "Include \"Llama\" at the beginning of the name of any AI model built with it that is distributed"
  use_policy: https://www.llama.com/llama3_3/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Llama 3.3 version release date; otherwise a license from Meta is required
  fingerprints:
    - ["LLAMA 3.3 COMMUNITY LICENSE AGREEMENT"]
    - ["Llama 3.3 is licensed under the Llama 3.3 Community License"]
    - ["Llama 3.3 Acceptable Use Policy"]

- id: llama4
  name: Llama 4 Community License Agreement
  url: https://www.llama.com/llama4/license/
  aliases: [llama-4, llama 4]
  links: [llama.com/llama4/license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Llama 4 is licensed under the Llama 4 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
  naming:
    - "Display \"Built with Llama\" on a related website, user interface, blog post, about page or product documentation"
    - "Include \"Llama\" at the beginning of the name of any AI model built with it that is distributed"
  use_policy: https://www.llama.com/llama4/use-policy/
  user_limit: 700000000
  conditions:
    commercial: fewer than 700 million monthly active users on the Llama 4 version release date; otherwise a license from Meta is required
  notes: The Acceptable Use Policy withholds the multimodal rights from individuals and companies domiciled in the EU.
  fingerprints:
    - ["LLAMA 4 COMMUNITY LICENSE AGREEMENT"]
    - ["Llama 4 is licensed under the Llama 4 Community License"]
    - ["Llama 4 Acceptable Use Policy"]

# ---------------------------------------------------------------- Google
- id: gemma
  name: Gemma Terms of Use
  url: https://ai.google.dev/gemma/terms
  aliases: [gemma terms of use, gemma-terms]
  links: [ai.google.dev/gemma/terms]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
  use_policy: https://ai.google.dev/gemma/prohibited_use_policy
  notes: Pass the use restrictions on as an enforceable provision, give recipients a copy of the terms, and mark modified files with a prominent notice (section 3.1).
  fingerprints:
    - ["Gemma Terms of Use"]
    - ["Gemma is provided under and subject to the Gemma Terms of Use"]
    - ["Gemma Prohibited Use Policy"]

# ---------------------------------------------------------------- Mistral AI
- id: mrl
  name: Mistral AI Research License
  url: https://mistral.ai/licenses/MRL-0.1.md
  aliases: [mistral research license, mistral ai research license, mrl-0.1]
  links: [mistral.ai/licenses/mrl]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: forbidden
  derivative_terms: carry
  attribution: true
  conditions:
    redistribute_weights: Research Purposes only, with a copy of the agreement
  notes: >-
    Conservative reading (see docs/LICENSES.md): the license authorises use for Research Purposes only and
    says any other use of a Mistral Model or a Derivative needs a license from Mistral AI; a public upload of a
    derivative cannot be limited to Research Purposes, so public redistribution of derivatives is treated as forbidden.
  fingerprints:
    - ["Mistral AI Research License"]

- id: mnpl
  name: Mistral AI Non-Production License
  url: https://mistral.ai/licenses/MNPL-0.1.md
  aliases: [mistral non-production license, mistral ai non-production license, mnpl-0.1]
  links: [mistral.ai/licenses/mnpl]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: forbidden
  derivative_terms: carry
  attribution: true
  conditions:
    redistribute_weights: non-production (testing, research, personal) use only, with a copy of the agreement
  notes: Same conservative reading as the MRL for public redistribution of derivatives.
  fingerprints:
    - ["Mistral AI Non-Production License"]

# ---------------------------------------------------------------- Alibaba Qwen
- id: qwen
  name: Qwen License Agreement
  url: https://huggingface.co/Qwen/Qwen2.5-72B-Instruct/blob/main/LICENSE
  aliases: [qwen license, qwen-license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Qwen is licensed under the Qwen LICENSE AGREEMENT, Copyright (c) Alibaba Cloud. All Rights Reserved."
  naming:
    - "Display \"Built with Qwen\" or \"Improved using Qwen\" in the documentation of any AI model built with it that is distributed"
  user_limit: 100000000
  conditions:
    commercial: fewer than 100 million monthly active users; otherwise a license from Alibaba Cloud is required
  fingerprints:
    - ["Qwen LICENSE AGREEMENT", "Alibaba Cloud"]

- id: qwen-research
  name: Qwen Research License Agreement
  url: https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE
  aliases: [qwen research license]
  commercial: forbidden
  redistribute_weights: conditional
  redistribute_derivatives: conditional
  derivative_terms: carry
  attribution: true
  notice: "Qwen is licensed under the Qwen RESEARCH LICENSE AGREEMENT, Copyright (c) Alibaba Cloud. All Rights Reserved."
  naming:
    - "Display \"Built with Qwen\" or \"Improved using Qwen\" in the documentation of any AI model built with it that is distributed"
  conditions:
    redistribute_weights: non-commercial research purposes only, with a copy of the agreement
    redistribute_derivatives: non-commercial research purposes only, with a copy of the agreement
  fingerprints:
    - ["Qwen RESEARCH LICENSE AGREEMENT", "Alibaba Cloud"]

- id: tongyi-qianwen
  name: Tongyi Qianwen License Agreement
  url: https://huggingface.co/Qwen/Qwen-7B/blob/main/LICENSE
  aliases: [tongyi qianwen, tongyi-qianwen-license-agreement, tongyi-qianwen-license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  notice: "Tongyi Qianwen is licensed under the Tongyi Qianwen LICENSE AGREEMENT, Copyright (c) Alibaba Cloud. All Rights Reserved."
  user_limit: 100000000
  conditions:
    commercial: fewer than 100 million monthly active users; otherwise a license from Alibaba Cloud is required
  notes: The materials may not be used to improve other large language models (excluding Tongyi Qianwen and its derivatives).
  fingerprints:
    - ["Tongyi Qianwen LICENSE AGREEMENT"]

# ---------------------------------------------------------------- DeepSeek
- id: deepseek
  name: DeepSeek License Agreement
  url: https://github.com/deepseek-ai/DeepSeek-LLM/blob/main/LICENSE-MODEL
  aliases: [deepseek license, deepseek-license]
  links: [deepseek-ai/deepseek-llm/blob/main/license-model]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: Attachment A (use restrictions) of the DeepSeek License Agreement
  notes: The use restrictions must be passed on to recipients of the model and its derivatives, with a copy of the agreement.
  fingerprints:
    - ["DEEPSEEK LICENSE AGREEMENT"]

# ---------------------------------------------------------------- TII Falcon
- id: falcon
  name: Falcon-180B TII License
  url: https://huggingface.co/tiiuae/falcon-180B/blob/main/LICENSE.txt
  aliases: [falcon-180b-license, falcon 180b tii license, tii falcon license]
  commercial: conditional
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: https://falconllm.tii.ae/acceptable-use-policy.html
  conditions:
    commercial: no "Hosting Use" (offering the model or a derivative as a hosted service or API) without a separate license from TII
  notes: Distribute with a copy of the license and the Acceptable Use Policy; derivatives stay under these terms.
  fingerprints:
    - ["Falcon 180B TII License"]

- id: falcon-llm-license
  name: TII Falcon License 2.0
  url: https://falconllm.tii.ae/falcon-terms-and-conditions.html
  aliases: [tii falcon license 2.0, falcon-2-license]
  commercial: allowed
  redistribute_weights: allowed
  redistribute_derivatives: allowed
  derivative_terms: carry
  attribution: true
  use_policy: https://falconllm.tii.ae/falcon-2-acceptable-use-policy.html
  notes: Apache-2.0 based, plus an acceptable use policy that must be passed on.
  fingerprints:
    - ["TII Falcon License", "Version 2.0"]

# ---------------------------------------------------------------- placeholders
- id: other
  name: Other (license not identified)
  url: ""
  commercial: unknown
  redistribute_weights: unknown
  redistribute_derivatives: unknown
  derivative_terms: carry
  attribution: true
  notes: "A card saying `license: other` without a recognisable license_name, license_link or license file."

- id: unknown
  name: Unknown license
  url: ""
  aliases: [unlicensed, none, proprietary]
  commercial: unknown
  redistribute_weights: unknown
  redistribute_derivatives: unknown
  derivative_terms: carry
  attribution: true

# ==================================================================== well-known models
# Extend offline with `smelt license --cards DIR` (a folder of model cards).
models:
# Meta
- {id: meta-llama/Llama-2-7b-hf, license: llama2}
- {id: meta-llama/Llama-2-7b-chat-hf, license: llama2}
- {id: meta-llama/Llama-2-13b-hf, license: llama2}
- {id: meta-llama/Llama-2-13b-chat-hf, license: llama2}
- {id: meta-llama/Llama-2-70b-hf, license: llama2}
- {id: meta-llama/Llama-2-70b-chat-hf, license: llama2}
- {id: meta-llama/Meta-Llama-3-8B, license: llama3}
- {id: meta-llama/Meta-Llama-3-8B-Instruct, license: llama3}
- {id: meta-llama/Meta-Llama-3-70B, license: llama3}
- {id: meta-llama/Meta-Llama-3-70B-Instruct, license: llama3}
- {id: meta-llama/Llama-3.1-8B, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-8B]}
- {id: meta-llama/Llama-3.1-8B-Instruct, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-8B-Instruct]}
- {id: meta-llama/Llama-3.1-70B, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-70B]}
- {id: meta-llama/Llama-3.1-70B-Instruct, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-70B-Instruct]}
- {id: meta-llama/Llama-3.1-405B, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-405B]}
- {id: meta-llama/Llama-3.1-405B-Instruct, license: llama3.1, aliases: [meta-llama/Meta-Llama-3.1-405B-Instruct]}
- {id: meta-llama/Llama-3.2-1B, license: llama3.2}
- {id: meta-llama/Llama-3.2-1B-Instruct, license: llama3.2}
- {id: meta-llama/Llama-3.2-3B, license: llama3.2}
- {id: meta-llama/Llama-3.2-3B-Instruct, license: llama3.2}
- {id: meta-llama/Llama-3.2-11B-Vision, license: llama3.2}
- {id: meta-llama/Llama-3.2-11B-Vision-Instruct, license: llama3.2}
- {id: meta-llama/Llama-3.2-90B-Vision, license: llama3.2}
- {id: meta-llama/Llama-3.2-90B-Vision-Instruct, license: llama3.2}
- {id: meta-llama/Llama-3.3-70B-Instruct, license: llama3.3}
- {id: meta-llama/Llama-4-Scout-17B-16E, license: llama4}
- {id: meta-llama/Llama-4-Scout-17B-16E-Instruct, license: llama4}
- {id: meta-llama/Llama-4-Maverick-17B-128E, license: llama4}
- {id: meta-llama/Llama-4-Maverick-17B-128E-Instruct, license: llama4}
# Mistral AI
- {id: mistralai/Mistral-7B-v0.1, license: apache-2.0}
- {id: mistralai/Mistral-7B-Instruct-v0.1, license: apache-2.0}
- {id: mistralai/Mistral-7B-Instruct-v0.2, license: apache-2.0}
- {id: mistralai/Mistral-7B-v0.3, license: apache-2.0}
- {id: mistralai/Mistral-7B-Instruct-v0.3, license: apache-2.0}
- {id: mistralai/Mixtral-8x7B-v0.1, license: apache-2.0}
- {id: mistralai/Mixtral-8x7B-Instruct-v0.1, license: apache-2.0}
- {id: mistralai/Mixtral-8x22B-v0.1, license: apache-2.0}
- {id: mistralai/Mixtral-8x22B-Instruct-v0.1, license: apache-2.0}
- {id: mistralai/Mistral-Nemo-Base-2407, license: apache-2.0}
- {id: mistralai/Mistral-Nemo-Instruct-2407, license: apache-2.0}
- {id: mistralai/Mistral-Large-Instruct-2407, license: mrl}
- {id: mistralai/Mistral-Large-Instruct-2411, license: mrl}
- {id: mistralai/Mistral-Small-Instruct-2409, license: mrl}
- {id: mistralai/Ministral-8B-Instruct-2410, license: mrl}
- {id: mistralai/Mistral-Small-24B-Base-2501, license: apache-2.0}
- {id: mistralai/Mistral-Small-24B-Instruct-2501, license: apache-2.0}
- {id: mistralai/Codestral-22B-v0.1, license: mnpl}
# Google
- {id: google/gemma-2b, license: gemma}
- {id: google/gemma-2b-it, license: gemma}
- {id: google/gemma-7b, license: gemma}
- {id: google/gemma-7b-it, license: gemma}
- {id: google/gemma-2-2b, license: gemma}
- {id: google/gemma-2-2b-it, license: gemma}
- {id: google/gemma-2-9b, license: gemma}
- {id: google/gemma-2-9b-it, license: gemma}
- {id: google/gemma-2-27b, license: gemma}
- {id: google/gemma-2-27b-it, license: gemma}
- {id: google/gemma-3-1b-pt, license: gemma}
- {id: google/gemma-3-1b-it, license: gemma}
- {id: google/gemma-3-4b-pt, license: gemma}
- {id: google/gemma-3-4b-it, license: gemma}
- {id: google/gemma-3-12b-pt, license: gemma}
- {id: google/gemma-3-12b-it, license: gemma}
- {id: google/gemma-3-27b-pt, license: gemma}
- {id: google/gemma-3-27b-it, license: gemma}
# Alibaba Qwen
- {id: Qwen/Qwen-7B, license: tongyi-qianwen}
- {id: Qwen/Qwen-14B, license: tongyi-qianwen}
- {id: Qwen/Qwen-72B, license: tongyi-qianwen}
- {id: Qwen/Qwen2-7B, license: apache-2.0}
- {id: Qwen/Qwen2-7B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2-72B, license: tongyi-qianwen}
- {id: Qwen/Qwen2-72B-Instruct, license: tongyi-qianwen}
- {id: Qwen/Qwen2.5-0.5B, license: apache-2.0}
- {id: Qwen/Qwen2.5-0.5B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2.5-1.5B, license: apache-2.0}
- {id: Qwen/Qwen2.5-1.5B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2.5-3B, license: qwen-research}
- {id: Qwen/Qwen2.5-3B-Instruct, license: qwen-research}
- {id: Qwen/Qwen2.5-7B, license: apache-2.0}
- {id: Qwen/Qwen2.5-7B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2.5-14B, license: apache-2.0}
- {id: Qwen/Qwen2.5-14B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2.5-32B, license: apache-2.0}
- {id: Qwen/Qwen2.5-32B-Instruct, license: apache-2.0}
- {id: Qwen/Qwen2.5-72B, license: qwen}
- {id: Qwen/Qwen2.5-72B-Instruct, license: qwen}
- {id: Qwen/Qwen3-0.6B, license: apache-2.0}
- {id: Qwen/Qwen3-1.7B, license: apache-2.0}
- {id: Qwen/Qwen3-4B, license: apache-2.0}
- {id: Qwen/Qwen3-8B, license: apache-2.0}
- {id: Qwen/Qwen3-14B, license: apache-2.0}
- {id: Qwen/Qwen3-32B, license: apache-2.0}
- {id: Qwen/Qwen3-30B-A3B, license: apache-2.0}
- {id: Qwen/Qwen3-235B-A22B, license: apache-2.0}
# DeepSeek
- {id: deepseek-ai/deepseek-llm-7b-base, license: deepseek}
- {id: deepseek-ai/deepseek-llm-7b-chat, license: deepseek}
- {id: deepseek-ai/deepseek-llm-67b-base, license: deepseek}
- {id: deepseek-ai/deepseek-llm-67b-chat, license: deepseek}
- {id: deepseek-ai/deepseek-coder-6.7b-base, license: deepseek}
- {id: deepseek-ai/deepseek-coder-6.7b-instruct, license: deepseek}
- {id: deepseek-ai/deepseek-coder-33b-instruct, license: deepseek}
- {id: deepseek-ai/DeepSeek-V2-Lite, license: deepseek}
- {id: deepseek-ai/DeepSeek-V2, license: deepseek}
- {id: deepseek-ai/DeepSeek-V3, license: mit}
- {id: deepseek-ai/DeepSeek-V3-Base, license: mit}
- {id: deepseek-ai/DeepSeek-R1, license: mit}
- {id: deepseek-ai/DeepSeek-R1-Distill-Qwen-7B, license: mit, base: [Qwen/Qwen2.5-Math-7B], relation: finetune}
- {id: deepseek-ai/DeepSeek-R1-Distill-Llama-8B, license: mit, base: [meta-llama/Llama-3.1-8B], relation: finetune}
- {id: deepseek-ai/DeepSeek-R1-Distill-Llama-70B, license: mit, base: [meta-llama/Llama-3.3-70B-Instruct], relation: finetune}
- {id: Qwen/Qwen2.5-Math-7B, license: apache-2.0}
# TII
- {id: tiiuae/falcon-7b, license: apache-2.0}
- {id: tiiuae/falcon-7b-instruct, license: apache-2.0}
- {id: tiiuae/falcon-40b, license: apache-2.0}
- {id: tiiuae/falcon-40b-instruct, license: apache-2.0}
- {id: tiiuae/falcon-180B, license: falcon}
- {id: tiiuae/falcon-180B-chat, license: falcon}
- {id: tiiuae/falcon-11B, license: falcon-llm-license}
# Microsoft
- {id: microsoft/phi-2, license: mit}
- {id: microsoft/Phi-3-mini-4k-instruct, license: mit}
- {id: microsoft/Phi-3-mini-128k-instruct, license: mit}
- {id: microsoft/Phi-3.5-mini-instruct, license: mit}
- {id: microsoft/phi-4, license: mit}
# Others
- {id: openai-community/gpt2, license: mit, aliases: [gpt2]}
- {id: EleutherAI/gpt-j-6b, license: apache-2.0}
- {id: EleutherAI/pythia-70m, license: apache-2.0}
- {id: EleutherAI/pythia-160m, license: apache-2.0}
- {id: EleutherAI/pythia-1b, license: apache-2.0}
- {id: TinyLlama/TinyLlama-1.1B-Chat-v1.0, license: apache-2.0}
- {id: HuggingFaceTB/SmolLM2-135M, license: apache-2.0}
- {id: HuggingFaceTB/SmolLM2-360M-Instruct, license: apache-2.0}
- {id: HuggingFaceTB/SmolLM2-1.7B-Instruct, license: apache-2.0}
- {id: bigscience/bloom, license: bigscience-bloom-rail-1.0}
- {id: bigscience/bloomz, license: bigscience-bloom-rail-1.0}
- {id: bigcode/starcoder, license: bigcode-openrail-m}
- {id: bigcode/starcoder2-15b, license: bigcode-openrail-m}
- {id: runwayml/stable-diffusion-v1-5, license: creativeml-openrail-m}
- {id: stabilityai/stable-diffusion-xl-base-1.0, license: openrail++}
# Community models that are frequent merge parents
- {id: NeverSleep/Lumimaid-v0.2-123B, license: cc-by-nc-4.0, base: [mistralai/Mistral-Large-Instruct-2407], relation: finetune}
- {id: anthracite-org/magnum-v2-123b, license: mrl, base: [mistralai/Mistral-Large-Instruct-2407], relation: finetune}
"""#
}
