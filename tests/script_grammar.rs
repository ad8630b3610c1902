//! grammar/linker-script.ebnf and the parser cannot drift apart: every keyword the lexer knows
//! and every contextual name the parser gives a meaning appears in the grammar, quoted as a
//! literal, and every keyword is listed in the grammar's keyword table.

use ldcheck::script::parse::{CONTEXTUAL_NAMES, KEYWORDS};

const GRAMMAR: &str = include_str!("../grammar/linker-script.ebnf");

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn every_keyword_is_a_literal_in_the_grammar() {
    for word in KEYWORDS.iter().chain(CONTEXTUAL_NAMES) {
        assert!(
            GRAMMAR.contains(&format!("\"{word}\"")),
            "{word} does not appear as \"{word}\" in grammar/linker-script.ebnf"
        );
    }
}

#[test]
fn every_keyword_is_in_the_keyword_table() {
    let table_start = GRAMMAR
        .find("(* KEYWORDS")
        .expect("the grammar has a KEYWORDS table");
    let table = words(&GRAMMAR[table_start..]);
    for word in KEYWORDS {
        assert!(
            table.contains(word),
            "{word} is missing from the KEYWORDS table of the grammar"
        );
    }
}

#[test]
fn keyword_list_has_no_duplicates() {
    let mut sorted: Vec<&str> = KEYWORDS.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), KEYWORDS.len());
}
