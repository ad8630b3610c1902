//! Expression folding with ld's section-relative value rules (ldexp.c's `exp_fold_tree`).
//!
//! Owns what an expression means given the current `.`, the evaluation context (top level or
//! inside an output section) and the phase: numbers vs. absolute vs. section-relative results,
//! invalid forward references, and the builtins. It does not walk statements (see `place`).

use super::LayoutError;
use super::ir::{LmaSpec, OsId};
use super::place::{Ctx, Engine, Phase};
use super::symbols::{SymBase, SymState};
use crate::script::ast::*;

/// What a value is relative to (ld's `expld.result.section`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// A plain number (`section == NULL`).
    Number,
    /// The absolute section.
    Abs,
    /// Relative to an output section's start.
    Sec(OsId),
}

/// A folded value: `value` is an offset from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value {
    pub value: u64,
    pub base: Base,
}

/// Per-evaluation state that ld keeps in `expld`.
#[derive(Debug, Default)]
pub(crate) struct Fold<'n> {
    /// `.` or ALIGN etc. produced the value relative to the context (`rel_from_abs`).
    pub rel_from_abs: bool,
    pub assigning_to_dot: bool,
    /// The only symbol an expression reads (for copying its type), or `Many`.
    pub assign_src: AssignSrc<'n>,
    /// The symbol being assigned, cleared when the expression reads it (self-reference).
    pub assign_name: Option<&'n str>,
    pub depth: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum AssignSrc<'n> {
    #[default]
    None,
    One(&'n str),
    Many,
}

const MAX_DEPTH: u32 = 512;

fn align_n(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        value.wrapping_add(align - 1) / align * align
    }
}

impl<'a> Engine<'_, 'a, '_> {
    fn vma_of(&self, base: Base) -> u64 {
        match base {
            Base::Sec(id) => self.os[id].vma,
            Base::Number | Base::Abs => 0,
        }
    }

    fn ctx_base(ctx: Ctx) -> Base {
        match ctx {
            Ctx::Sec(id) => Base::Sec(id),
            Ctx::Abs | Ctx::Und => Base::Abs,
        }
    }

    /// `new_rel_from_abs`: an absolute address expressed relative to the context section. The
    /// mark it leaves lets an absolute top-level result join the section `.` is in.
    fn rel_from_abs(&self, fold: &mut Fold<'a>, ctx: Ctx, addr: u64) -> Value {
        fold.rel_from_abs = true;
        let base = Self::ctx_base(ctx);
        Value {
            value: addr.wrapping_sub(self.vma_of(base)),
            base,
        }
    }

    /// `make_abs`: the value as an absolute address. ld 2.40 also clears the `.`-derived mark
    /// here, so `ABSOLUTE(.)` or `. - sym` assigned at top level stays absolute (checked against
    /// the real linker) while `.`, `. + 4` or `ALIGN(16)` join the section `.` is in.
    fn make_abs(&self, fold: &mut Fold<'a>, v: Value) -> Value {
        fold.rel_from_abs = false;
        Value {
            value: v.value.wrapping_add(self.vma_of(v.base)),
            base: Base::Abs,
        }
    }

    /// Absolute address a value denotes, taking a plain number relative to the context.
    pub(crate) fn address_of(&self, v: Value, ctx: Ctx) -> u64 {
        match v.base {
            Base::Number => v.value.wrapping_add(self.vma_of(Self::ctx_base(ctx))),
            b => v.value.wrapping_add(self.vma_of(b)),
        }
    }

    /// Folds `e`. `Ok(None)` is ld's "not valid" (e.g. a forward reference in an early phase).
    pub(crate) fn fold(
        &mut self,
        fold: &mut Fold<'a>,
        e: &Expr<'a>,
        ctx: Ctx,
        dot: u64,
    ) -> Result<Option<Value>, LayoutError> {
        fold.depth += 1;
        if fold.depth > MAX_DEPTH {
            return Err(LayoutError::TooDeep { span: e.span });
        }
        let r = self.fold_inner(fold, e, ctx, dot);
        fold.depth -= 1;
        r
    }

    fn fold_inner(
        &mut self,
        fold: &mut Fold<'a>,
        e: &Expr<'a>,
        ctx: Ctx,
        dot: u64,
    ) -> Result<Option<Value>, LayoutError> {
        Ok(Some(match &e.kind {
            ExprKind::Number { value, .. } => {
                if ctx == Ctx::Abs {
                    Value {
                        value: *value,
                        base: Base::Abs,
                    }
                } else {
                    Value {
                        value: *value,
                        base: Base::Number,
                    }
                }
            }
            ExprKind::Dot => self.rel_from_abs(fold, ctx, dot),
            ExprKind::Symbol(name) => return self.fold_symbol(fold, name, e.span, ctx),
            ExprKind::Unary(op, inner) => {
                let Some(v) = self.fold(fold, inner, ctx, dot)? else {
                    return Ok(None);
                };
                let value = match op {
                    UnaryOp::Neg => v.value.wrapping_neg(),
                    UnaryOp::Not => u64::from(v.value == 0),
                    UnaryOp::BitNot => !v.value,
                };
                Value {
                    value,
                    base: v.base,
                }
            }
            ExprKind::Binary(op, l, r) => {
                return self.fold_binary(fold, (*op, l, r), e.span, ctx, dot);
            }
            ExprKind::Conditional(c, t, f) => {
                let saved = fold.assign_src.clone();
                let Some(cond) = self.fold(fold, c, ctx, dot)? else {
                    return Ok(None);
                };
                fold.assign_src = saved;
                return self.fold(fold, if cond.value != 0 { t } else { f }, ctx, dot);
            }
            ExprKind::SectionQuery(q, name) => {
                return self.fold_section_query(fold, *q, name, e.span);
            }
            ExprKind::RegionQuery(q, name) => {
                let Some(region) = self.region_by_name(name.text) else {
                    return Err(LayoutError::UndefinedRegion {
                        name: name.text.to_string(),
                        span: name.span,
                    });
                };
                let (origin, length) = (self.regions[region].origin, self.regions[region].length);
                match q {
                    RegionQuery::Length => Value {
                        value: length,
                        base: Base::Number,
                    },
                    RegionQuery::Origin => self.rel_from_abs(fold, ctx, origin),
                }
            }
            ExprKind::Defined(name) => Value {
                value: u64::from(self.is_defined_for_script(name.text)),
                base: Base::Number,
            },
            ExprKind::SizeofHeaders => {
                if self.phase == Phase::Mark {
                    Value {
                        value: 0,
                        base: Base::Number,
                    }
                } else {
                    return Err(LayoutError::Unsupported {
                        what: "SIZEOF_HEADERS (it depends on the final program header count)",
                        span: e.span,
                    });
                }
            }
            ExprKind::Constant(c) => Value {
                value: match c {
                    ConstantName::MaxPageSize => self.opts.max_page_size,
                    ConstantName::CommonPageSize => self.opts.common_page_size,
                },
                base: Base::Number,
            },
            ExprKind::SegmentStart(_, default) => {
                let Some(v) = self.fold(fold, default, ctx, dot)? else {
                    return Ok(None);
                };
                self.rel_from_abs(fold, ctx, v.value)
            }
            ExprKind::Call(builtin, args) => {
                return self.fold_call(fold, *builtin, args, e.span, ctx, dot);
            }
            ExprKind::Assert(a) => {
                let Some(v) = self.fold(fold, &a.condition, ctx, dot)? else {
                    return Ok(None);
                };
                if self.phase == Phase::Final && v.value == 0 {
                    return Err(LayoutError::AssertionFailed {
                        message: a.message.text.to_string(),
                        span: a.span,
                    });
                }
                v
            }
        }))
    }

    fn fold_symbol(
        &mut self,
        fold: &mut Fold<'a>,
        name: &Name<'a>,
        span: Span,
        ctx: Ctx,
    ) -> Result<Option<Value>, LayoutError> {
        let id = self.syms.intern(name.text);
        fold.assign_src = match &fold.assign_src {
            AssignSrc::None => AssignSrc::One(name.text),
            _ => AssignSrc::Many,
        };
        if fold.assign_name == Some(name.text) && !self.is_abs_script_symbol_this_iteration(id) {
            fold.assign_name = None;
        }
        let state = self.syms.get(id).state.clone();
        match state {
            SymState::Defined { base, value } => {
                let resolved = self.resolve_sym_base(base, value);
                match resolved {
                    None => {
                        if self.phase <= Phase::Mark {
                            Ok(None)
                        } else {
                            Err(LayoutError::UndefinedSymbol {
                                name: name.text.to_string(),
                                span,
                            })
                        }
                    }
                    Some((Base::Abs, v)) => {
                        if ctx != Ctx::Abs {
                            Ok(Some(Value {
                                value: v,
                                base: Base::Number,
                            }))
                        } else {
                            Ok(Some(Value {
                                value: v,
                                base: Base::Abs,
                            }))
                        }
                    }
                    Some((b, v)) => Ok(Some(Value { value: v, base: b })),
                }
            }
            _ => {
                if self.phase == Phase::Final
                    || (self.phase != Phase::Mark && fold.assigning_to_dot)
                {
                    return Err(LayoutError::UndefinedSymbol {
                        name: name.text.to_string(),
                        span,
                    });
                }
                self.syms.mark_referenced(id);
                Ok(None)
            }
        }
    }

    /// A symbol definition as (output base, offset): object symbols resolve through their input
    /// section's placement; None when that section has no output section yet.
    pub(crate) fn resolve_sym_base(&self, base: SymBase, value: u64) -> Option<(Base, u64)> {
        match base {
            SymBase::Abs => Some((Base::Abs, value)),
            SymBase::Out(id) => Some((Base::Sec(id), value)),
            SymBase::Input(r) => {
                let r = r.section();
                let out = self.input_output[r.file][r.sec]?;
                match out {
                    None => Some((Base::Abs, value)),
                    Some(_) => {
                        let (owner, off) = self.merged_location(r, value);
                        let os = self.input_output[owner.file][owner.sec]??;
                        Some((
                            Base::Sec(os),
                            off.wrapping_add(self.input_offset[owner.file][owner.sec]),
                        ))
                    }
                }
            }
        }
    }

    /// ld's `fold_binary` preamble: operands from two different sections both become
    /// absolute; a plain-number right operand takes the left one's section (and the left is
    /// then marked a number, which the result-section rule looks at).
    fn reconcile(&self, fold: &mut Fold<'a>, mut lhs: Value, mut res: Value) -> (Value, Value) {
        if lhs.base != res.base {
            if res.base != Base::Number && lhs.base != Base::Number {
                res = self.make_abs(fold, res);
                lhs = self.make_abs(fold, lhs);
            } else if res.base == Base::Number {
                res.base = lhs.base;
                lhs.base = Base::Number;
            }
        }
        (lhs, res)
    }

    fn fold_binary(
        &mut self,
        fold: &mut Fold<'a>,
        (op, l, r): (BinaryOp, &Expr<'a>, &Expr<'a>),
        span: Span,
        ctx: Ctx,
        dot: u64,
    ) -> Result<Option<Value>, LayoutError> {
        let lhs = self.fold(fold, l, ctx, dot)?;
        let rhs = self.fold(fold, r, ctx, dot)?;
        let (Some(lhs), Some(res)) = (lhs, rhs) else {
            return Ok(None);
        };
        let (lhs, mut res) = self.reconcile(fold, lhs, res);
        let arith = |res: &mut Value, lhs_base: Base| {
            if res.base == lhs_base {
                res.base = if ctx == Ctx::Abs {
                    Base::Abs
                } else {
                    Base::Number
                };
            }
        };
        let (a, b) = (lhs.value, res.value);
        match op {
            BinaryOp::Add => {
                res.value = a.wrapping_add(b);
                arith(&mut res, lhs.base);
            }
            BinaryOp::Sub => {
                res.value = a.wrapping_sub(b);
                arith(&mut res, lhs.base);
            }
            BinaryOp::Mul => {
                res.value = a.wrapping_mul(b);
                arith(&mut res, lhs.base);
            }
            BinaryOp::Shl => {
                res.value = a.wrapping_shl(b as u32);
                arith(&mut res, lhs.base);
            }
            BinaryOp::Shr => {
                res.value = a.wrapping_shr(b as u32);
                arith(&mut res, lhs.base);
            }
            BinaryOp::BitAnd => {
                res.value = a & b;
                arith(&mut res, lhs.base);
            }
            BinaryOp::BitXor => {
                res.value = a ^ b;
                arith(&mut res, lhs.base);
            }
            BinaryOp::BitOr => {
                res.value = a | b;
                arith(&mut res, lhs.base);
            }
            BinaryOp::Div | BinaryOp::Rem => {
                if b == 0 {
                    if self.phase == Phase::Mark {
                        return Ok(Some(res));
                    }
                    return Err(LayoutError::DivisionByZero {
                        op: if op == BinaryOp::Div { "/" } else { "%" },
                        span,
                    });
                }
                let (sa, sb) = (a as i64, b as i64);
                res.value = if op == BinaryOp::Div {
                    sa.wrapping_div(sb) as u64
                } else {
                    sa.wrapping_rem(sb) as u64
                };
                arith(&mut res, lhs.base);
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Gt
            | BinaryOp::Le
            | BinaryOp::Ge => {
                let t = match op {
                    BinaryOp::Eq => a == b,
                    BinaryOp::Ne => a != b,
                    BinaryOp::Lt => a < b,
                    BinaryOp::Gt => a > b,
                    BinaryOp::Le => a <= b,
                    _ => a >= b,
                };
                res = Value {
                    value: u64::from(t),
                    base: Base::Number,
                };
            }
            BinaryOp::And => {
                res = Value {
                    value: u64::from(a != 0 && b != 0),
                    base: Base::Number,
                }
            }
            BinaryOp::Or => {
                res = Value {
                    value: u64::from(a != 0 || b != 0),
                    base: Base::Number,
                }
            }
        }
        Ok(Some(res))
    }

    fn fold_call(
        &mut self,
        fold: &mut Fold<'a>,
        builtin: Builtin,
        args: &[Expr<'a>],
        span: Span,
        ctx: Ctx,
        dot: u64,
    ) -> Result<Option<Value>, LayoutError> {
        if matches!(
            builtin,
            Builtin::DataSegmentAlign | Builtin::DataSegmentEnd | Builtin::DataSegmentRelroEnd
        ) {
            return Err(LayoutError::Unsupported {
                what: "DATA_SEGMENT_ALIGN/DATA_SEGMENT_END/DATA_SEGMENT_RELRO_END",
                span,
            });
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            match self.fold(fold, a, ctx, dot)? {
                Some(v) => vals.push(v),
                None => return Ok(None),
            }
        }
        let first = vals.first().copied().unwrap_or(Value {
            value: 0,
            base: Base::Number,
        });
        Ok(Some(match (builtin, vals.len()) {
            (Builtin::Absolute, _) => self.make_abs(fold, first),
            (Builtin::Align, 1) => self.rel_from_abs(fold, ctx, align_n(dot, first.value)),
            (Builtin::Align | Builtin::Max | Builtin::Min, _) => {
                let (lhs, mut res) =
                    self.reconcile(fold, first, vals.get(1).copied().unwrap_or(first));
                match builtin {
                    Builtin::Align => res.value = align_n(lhs.value, res.value),
                    Builtin::Max => res.value = lhs.value.max(res.value),
                    _ => res.value = lhs.value.min(res.value),
                }
                res
            }
            (Builtin::Block, _) => self.rel_from_abs(fold, ctx, align_n(dot, first.value)),
            (Builtin::Next, _) => {
                let v = self.make_abs(fold, first);
                Value {
                    value: align_n(dot, v.value),
                    base: Base::Abs,
                }
            }
            (Builtin::Log2Ceil, _) => Value {
                value: if first.value <= 1 {
                    0
                } else {
                    u64::from(64 - (first.value - 1).leading_zeros())
                },
                base: first.base,
            },
            (
                Builtin::DataSegmentAlign | Builtin::DataSegmentEnd | Builtin::DataSegmentRelroEnd,
                _,
            ) => first,
        }))
    }

    fn fold_section_query(
        &mut self,
        fold: &mut Fold<'a>,
        q: SectionQuery,
        name: &Name<'a>,
        span: Span,
    ) -> Result<Option<Value>, LayoutError> {
        let Some(id) = self.find_output_section(name.text) else {
            if self.phase == Phase::Final {
                return Err(LayoutError::UndefinedSection {
                    name: name.text.to_string(),
                    span,
                });
            }
            return Ok(match q {
                SectionQuery::Sizeof | SectionQuery::AlignOf => Some(Value {
                    value: 0,
                    base: Base::Number,
                }),
                _ => None,
            });
        };
        let st = &self.os[id];
        Ok(match q {
            SectionQuery::Addr => {
                if st.processed_vma {
                    Some(Value {
                        value: 0,
                        base: if st.created {
                            Base::Sec(id)
                        } else {
                            Base::Number
                        },
                    })
                } else {
                    None
                }
            }
            SectionQuery::LoadAddr => {
                if st.processed_lma {
                    // ld folds a load-address expression (`AT(…)`, also the first OVERLAY
                    // member's) again here and makes it absolute, which clears the `.`-derived
                    // mark; later overlay members have none.
                    if matches!(self.prog.sections[id].lma, LmaSpec::Expr(_)) {
                        fold.rel_from_abs = false;
                    }
                    Some(Value {
                        value: st.lma,
                        base: Base::Abs,
                    })
                } else {
                    None
                }
            }
            SectionQuery::Sizeof => Some(Value {
                value: if !st.created {
                    0
                } else if st.processed_vma {
                    st.size
                } else {
                    st.rawsize
                },
                base: Base::Number,
            }),
            SectionQuery::AlignOf => Some(Value {
                value: if st.created { st.align.max(1) } else { 0 },
                base: Base::Number,
            }),
        })
    }
}
