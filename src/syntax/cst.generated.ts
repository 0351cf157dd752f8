/* Generated from src/syntax/parser.ts by `npm run gen`. Do not edit by hand. */
import type { CstNode, ICstVisitor, IToken } from "chevrotain";

export interface FileCstNode extends CstNode {
  name: "file";
  children: FileCstChildren;
}

export type FileCstChildren = {
  declaration?: DeclarationCstNode[];
};

export interface DeclarationCstNode extends CstNode {
  name: "declaration";
  children: DeclarationCstChildren;
}

export type DeclarationCstChildren = {
  pipelineDecl?: PipelineDeclCstNode[];
  sourceDecl?: SourceDeclCstNode[];
  sinkDecl?: SinkDeclCstNode[];
  letDecl?: LetDeclCstNode[];
  flowDecl?: FlowDeclCstNode[];
};

export interface PipelineDeclCstNode extends CstNode {
  name: "pipelineDecl";
  children: PipelineDeclCstChildren;
}

export type PipelineDeclCstChildren = {
  Pipeline: IToken[];
  name: IToken[];
  settings?: RecordCstNode[];
};

export interface SourceDeclCstNode extends CstNode {
  name: "sourceDecl";
  children: SourceDeclCstChildren;
}

export type SourceDeclCstChildren = {
  Source: IToken[];
  name: IToken[];
  Equals: IToken[];
  connector: IToken[];
  options: RecordCstNode[];
};

export interface SinkDeclCstNode extends CstNode {
  name: "sinkDecl";
  children: SinkDeclCstChildren;
}

export type SinkDeclCstChildren = {
  Sink: IToken[];
  name: IToken[];
  Equals: IToken[];
  connector: IToken[];
  options: RecordCstNode[];
};

export interface LetDeclCstNode extends CstNode {
  name: "letDecl";
  children: LetDeclCstChildren;
}

export type LetDeclCstChildren = {
  Let: IToken[];
  name: IToken[];
  Equals: IToken[];
  value: ExpressionCstNode[];
};

export interface FlowDeclCstNode extends CstNode {
  name: "flowDecl";
  children: FlowDeclCstChildren;
}

export type FlowDeclCstChildren = {
  Flow: IToken[];
  source: IToken[];
  step?: StepCstNode[];
  Arrow: IToken[];
  sinks: IToken[];
  Comma?: IToken[];
};

export interface StepCstNode extends CstNode {
  name: "step";
  children: StepCstChildren;
}

export type StepCstChildren = {
  Pipe: IToken[];
  filterStep?: FilterStepCstNode[];
  mapStep?: MapStepCstNode[];
  routeStep?: RouteStepCstNode[];
  validateStep?: ValidateStepCstNode[];
};

export interface FilterStepCstNode extends CstNode {
  name: "filterStep";
  children: FilterStepCstChildren;
}

export type FilterStepCstChildren = {
  Filter: IToken[];
  condition: ExpressionCstNode[];
};

export interface MapStepCstNode extends CstNode {
  name: "mapStep";
  children: MapStepCstChildren;
}

export type MapStepCstChildren = {
  Map: IToken[];
  record: RecordCstNode[];
};

export interface RouteStepCstNode extends CstNode {
  name: "routeStep";
  children: RouteStepCstChildren;
}

export type RouteStepCstChildren = {
  Route: IToken[];
  target: ExpressionCstNode[];
};

export interface ValidateStepCstNode extends CstNode {
  name: "validateStep";
  children: ValidateStepCstChildren;
}

export type ValidateStepCstChildren = {
  Validate: IToken[];
  schema: IToken[];
};

export interface ExpressionCstNode extends CstNode {
  name: "expression";
  children: ExpressionCstChildren;
}

export type ExpressionCstChildren = {
  coalesceExpr: CoalesceExprCstNode[];
};

export interface CoalesceExprCstNode extends CstNode {
  name: "coalesceExpr";
  children: CoalesceExprCstChildren;
}

export type CoalesceExprCstChildren = {
  operands: (OrExprCstNode)[];
  operators?: IToken[];
};

export interface OrExprCstNode extends CstNode {
  name: "orExpr";
  children: OrExprCstChildren;
}

export type OrExprCstChildren = {
  operands: (AndExprCstNode)[];
  operators?: IToken[];
};

export interface AndExprCstNode extends CstNode {
  name: "andExpr";
  children: AndExprCstChildren;
}

export type AndExprCstChildren = {
  operands: (NotExprCstNode)[];
  operators?: IToken[];
};

export interface NotExprCstNode extends CstNode {
  name: "notExpr";
  children: NotExprCstChildren;
}

export type NotExprCstChildren = {
  Not?: IToken[];
  negated?: NotExprCstNode[];
  comparison?: ComparisonCstNode[];
};

export interface ComparisonCstNode extends CstNode {
  name: "comparison";
  children: ComparisonCstChildren;
}

export type ComparisonCstChildren = {
  left: AdditiveCstNode[];
  operator?: ComparisonOperatorCstNode[];
  right?: AdditiveCstNode[];
  Is?: IToken[];
  Not?: IToken[];
  Null?: IToken[];
};

export interface ComparisonOperatorCstNode extends CstNode {
  name: "comparisonOperator";
  children: ComparisonOperatorCstChildren;
}

export type ComparisonOperatorCstChildren = {
  EqualEqual?: IToken[];
  NotEqual?: IToken[];
  LessEqual?: IToken[];
  GreaterEqual?: IToken[];
  Less?: IToken[];
  Greater?: IToken[];
  In?: IToken[];
  Matches?: IToken[];
};

export interface AdditiveCstNode extends CstNode {
  name: "additive";
  children: AdditiveCstChildren;
}

export type AdditiveCstChildren = {
  operands: (MultiplicativeCstNode)[];
  operators?: (IToken)[];
};

export interface MultiplicativeCstNode extends CstNode {
  name: "multiplicative";
  children: MultiplicativeCstChildren;
}

export type MultiplicativeCstChildren = {
  operands: (UnaryCstNode)[];
  operators?: (IToken)[];
};

export interface UnaryCstNode extends CstNode {
  name: "unary";
  children: UnaryCstChildren;
}

export type UnaryCstChildren = {
  Minus?: IToken[];
  negated?: UnaryCstNode[];
  postfix?: PostfixCstNode[];
};

export interface PostfixCstNode extends CstNode {
  name: "postfix";
  children: PostfixCstChildren;
}

export type PostfixCstChildren = {
  primary: PrimaryCstNode[];
  suffixes?: (MemberSuffixCstNode | IndexSuffixCstNode)[];
};

export interface MemberSuffixCstNode extends CstNode {
  name: "memberSuffix";
  children: MemberSuffixCstChildren;
}

export type MemberSuffixCstChildren = {
  Dot: IToken[];
  property: IToken[];
};

export interface IndexSuffixCstNode extends CstNode {
  name: "indexSuffix";
  children: IndexSuffixCstChildren;
}

export type IndexSuffixCstChildren = {
  LBracket: IToken[];
  index: ExpressionCstNode[];
  RBracket: IToken[];
};

export interface PrimaryCstNode extends CstNode {
  name: "primary";
  children: PrimaryCstChildren;
}

export type PrimaryCstChildren = {
  NumberLiteral?: IToken[];
  StringLiteral?: IToken[];
  True?: IToken[];
  False?: IToken[];
  Null?: IToken[];
  list?: ListCstNode[];
  record?: RecordCstNode[];
  nameOrCall?: NameOrCallCstNode[];
  parenthesized?: ParenthesizedCstNode[];
};

export interface NameOrCallCstNode extends CstNode {
  name: "nameOrCall";
  children: NameOrCallCstChildren;
}

export type NameOrCallCstChildren = {
  name?: (IToken)[];
  call?: CallArgumentsCstNode[];
};

export interface CallArgumentsCstNode extends CstNode {
  name: "callArguments";
  children: CallArgumentsCstChildren;
}

export type CallArgumentsCstChildren = {
  LParen: IToken[];
  args?: ExpressionCstNode[];
  Comma?: IToken[];
  RParen: IToken[];
};

export interface ParenthesizedCstNode extends CstNode {
  name: "parenthesized";
  children: ParenthesizedCstChildren;
}

export type ParenthesizedCstChildren = {
  LParen: IToken[];
  inner: ExpressionCstNode[];
  RParen: IToken[];
};

export interface ListCstNode extends CstNode {
  name: "list";
  children: ListCstChildren;
}

export type ListCstChildren = {
  LBracket: IToken[];
  items?: ExpressionCstNode[];
  Comma?: IToken[];
  RBracket: IToken[];
};

export interface RecordCstNode extends CstNode {
  name: "record";
  children: RecordCstChildren;
}

export type RecordCstChildren = {
  LCurly: IToken[];
  entries?: RecordEntryCstNode[];
  Comma?: IToken[];
  RCurly: IToken[];
};

export interface RecordEntryCstNode extends CstNode {
  name: "recordEntry";
  children: RecordEntryCstChildren;
}

export type RecordEntryCstChildren = {
  Spread?: IToken[];
  spread?: ExpressionCstNode[];
  Minus?: IToken[];
  drop?: IToken[];
  name?: IToken[];
  quotedName?: IToken[];
  Colon?: IToken[];
  value?: ExpressionCstNode[];
};

export interface ICstNodeVisitor<IN, OUT> extends ICstVisitor<IN, OUT> {
  file(children: FileCstChildren, param?: IN): OUT;
  declaration(children: DeclarationCstChildren, param?: IN): OUT;
  pipelineDecl(children: PipelineDeclCstChildren, param?: IN): OUT;
  sourceDecl(children: SourceDeclCstChildren, param?: IN): OUT;
  sinkDecl(children: SinkDeclCstChildren, param?: IN): OUT;
  letDecl(children: LetDeclCstChildren, param?: IN): OUT;
  flowDecl(children: FlowDeclCstChildren, param?: IN): OUT;
  step(children: StepCstChildren, param?: IN): OUT;
  filterStep(children: FilterStepCstChildren, param?: IN): OUT;
  mapStep(children: MapStepCstChildren, param?: IN): OUT;
  routeStep(children: RouteStepCstChildren, param?: IN): OUT;
  validateStep(children: ValidateStepCstChildren, param?: IN): OUT;
  expression(children: ExpressionCstChildren, param?: IN): OUT;
  coalesceExpr(children: CoalesceExprCstChildren, param?: IN): OUT;
  orExpr(children: OrExprCstChildren, param?: IN): OUT;
  andExpr(children: AndExprCstChildren, param?: IN): OUT;
  notExpr(children: NotExprCstChildren, param?: IN): OUT;
  comparison(children: ComparisonCstChildren, param?: IN): OUT;
  comparisonOperator(children: ComparisonOperatorCstChildren, param?: IN): OUT;
  additive(children: AdditiveCstChildren, param?: IN): OUT;
  multiplicative(children: MultiplicativeCstChildren, param?: IN): OUT;
  unary(children: UnaryCstChildren, param?: IN): OUT;
  postfix(children: PostfixCstChildren, param?: IN): OUT;
  memberSuffix(children: MemberSuffixCstChildren, param?: IN): OUT;
  indexSuffix(children: IndexSuffixCstChildren, param?: IN): OUT;
  primary(children: PrimaryCstChildren, param?: IN): OUT;
  nameOrCall(children: NameOrCallCstChildren, param?: IN): OUT;
  callArguments(children: CallArgumentsCstChildren, param?: IN): OUT;
  parenthesized(children: ParenthesizedCstChildren, param?: IN): OUT;
  list(children: ListCstChildren, param?: IN): OUT;
  record(children: RecordCstChildren, param?: IN): OUT;
  recordEntry(children: RecordEntryCstChildren, param?: IN): OUT;
}
