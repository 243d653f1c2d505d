def exact_cases(): return []
